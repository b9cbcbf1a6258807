import pkg from '../package.json' with { type: 'json' };

/** The CLI's version: package.json's, inlined by the bundler (so `changeset version` needs no edit here). */
export const VERSION: string = pkg.version;
