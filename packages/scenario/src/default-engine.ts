import { Engine } from '@foliolab/unmap-engine';
import type { EngineFactory } from './engine-like.js';

/** Whether `defaultEngineFactory` can build an engine in this build (kept for callers that check). */
export const engineAvailable: boolean = true;

/** `new Engine(config)` of `@foliolab/unmap-engine`: the engine every scenario runs on by default. */
export const defaultEngineFactory: EngineFactory = (config) => new Engine(config);
