export type {
  Addr,
  Advice,
  ArchName,
  DeviceExclusiveArgs,
  EngineConfig,
  EventMatcher,
  ExitArgs,
  ExpectArgs,
  ForkArgs,
  InjectArgs,
  InjectName,
  MadviseArgs,
  MapcountMode,
  Matcher,
  MmapArgs,
  MprotectArgs,
  MremapArgs,
  MthpSetting,
  MthpSize,
  PinArgs,
  PoisonArgs,
  Policy,
  Prot,
  RangeArgs,
  ReadArgs,
  ReclaimArgs,
  Scenario,
  Size,
  Step,
  StepCommon,
  StepKind,
  UffdwpArgs,
  UnpinArgs,
  When,
  WriteArgs,
} from './types.js';
export { ARCH_NAMES, INJECT_NAMES, MTHP_SIZES, POLICIES, STEP_KINDS, stepArgs, stepKind } from './types.js';
export type {
  EngineFactory,
  EngineLike,
  FolioDump,
  InvariantReport,
  InvariantViolation,
  MmapOptions,
  ProcessDump,
  PteDump,
  ReadResult,
  ReclaimOptions,
  StateV1,
  VmaDump,
} from './engine-like.js';
export { defaultEngineFactory, engineAvailable } from './default-engine.js';
export { addrNames, evalAddr, formatAddr, formatSize, parseAddrExpr, parseSize, PAGE_SIZE } from './sizes.js';
export type { AddrExpr, AddrTerm } from './sizes.js';
export { ScenarioError, formatDiagnostic, didYouMean, editDistance } from './diagnostics.js';
export type { Diagnostic } from './diagnostics.js';
export { SCENARIO_SCHEMA } from './schema/scenario-schema.js';
export { STATE_SCHEMA } from './schema/state-schema.js';
export { validateStateDump } from './validate.js';
export { checkScenario, loadScenarioFile, parseScenario, scenarioSource, validateScenario } from './loader.js';
export type { ScenarioSource, SourceLocation } from './loader.js';
export { PATH_ROOTS, parsePath, resolvePath } from './path.js';
export type { PathContext, Resolved, StatePath } from './path.js';
export { deepEqual, evaluateExpect, isMatcher, matchValue, MATCHER_KEYS } from './expect.js';
export type { ExpectEnv, ExpectationResult } from './expect.js';
export { DEFAULT_LIMITS, describeStep, runScenario } from './runner.js';
export type { LedgerDelta, RunError, RunOptions, RunResult, StepResult } from './runner.js';
export { ABSENT, compare, diffStates, formatCompare, pathMatches } from './compare.js';
export type { AllowedDifference, CompareOptions, CompareResult, DiffEntry, DiffOptions, PolicyRun, StateDiff } from './compare.js';
export { specScenarioFiles, specScenariosDir } from './spec-dir.js';
export { randomScenario, scenarioYaml } from './random.js';
export type { RandomScenarioOptions } from './random.js';
