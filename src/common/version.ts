import fs from 'node:fs';

/**
 * The version of level-replicator, from its package.json: `--version` of every command,
 * the `lr_build_info` metric and the Status RPC all say the same. Read at start-up
 * rather than compiled in, so a build can never disagree with the package it ships in
 * (src/ and dist/ are both two levels below it).
 */
export const VERSION: string = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The node.js version this process runs on (`v20.15.0`), a label of lr_build_info. */
export const NODE_VERSION = process.version;
