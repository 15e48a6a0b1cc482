import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import yargs from 'yargs';
import { parsePositiveInt } from '../../src/common/config.js';
import { addOptions, CONFIG_OPTION, optionSource, type OptionSpec } from '../../src/common/options.js';

const SPECS: Record<string, OptionSpec> = {
  ...CONFIG_OPTION,
  size: { type: 'number', default: 10, env: 'LR_TEST_SIZE', describe: 'a number', parse: parsePositiveInt },
  name: { type: 'string', default: 'dflt', env: 'LR_TEST_NAME', describe: 'a string' },
  on: { type: 'boolean', default: true, env: 'LR_TEST_ON', describe: 'a switch' },
};
const ENVS = ['LR_TEST_SIZE', 'LR_TEST_NAME', 'LR_TEST_ON', 'LR_CONFIG'];

/** Parses args as a CLI would, with env set for the parse only; a refusal comes back as its message. */
async function parse(args: string[], env: Record<string, string> = {}): Promise<Record<string, unknown> | string> {
  const saved = ENVS.map((k) => [k, process.env[k]] as const);
  for (const k of ENVS) delete process.env[k];
  Object.assign(process.env, env);
  try {
    const y = addOptions(yargs(args).strict().exitProcess(false).fail((msg, err) => {
      throw err ?? new Error(msg);
    }), SPECS);
    return (await y.parse()) as Record<string, unknown>;
  } catch (err) {
    return (err as Error).message;
  } finally {
    for (const [k, v] of saved) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

describe('options: flag > environment variable > config file > default', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lr-options-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = (text: string) => {
    const file = path.join(dir, `c${fs.readdirSync(dir).length}.yaml`);
    fs.writeFileSync(file, text);
    return file;
  };

  it('each level wins over the ones below it, and the source is recorded', async () => {
    const file = config('size: 30\nname: from-config\non: false\n');
    const dflt = (await parse([])) as Record<string, unknown>;
    assert.deepEqual([dflt.size, dflt.name, dflt.on, optionSource(dflt, 'size')], [10, 'dflt', true, 'default']);
    const fromConfig = (await parse(['--config', file])) as Record<string, unknown>;
    assert.deepEqual([fromConfig.size, fromConfig.name, fromConfig.on, optionSource(fromConfig, 'size')], [30, 'from-config', false, 'config']);
    const fromEnv = (await parse(['--config', file], { LR_TEST_SIZE: '20', LR_TEST_ON: 'yes' })) as Record<string, unknown>;
    assert.deepEqual([fromEnv.size, fromEnv.name, fromEnv.on, optionSource(fromEnv, 'size')], [20, 'from-config', true, 'env']);
    const fromFlag = (await parse(['--config', file, '--size', '5', '--no-on'], { LR_TEST_SIZE: '20', LR_TEST_ON: 'yes' })) as Record<string, unknown>;
    assert.deepEqual([fromFlag.size, fromFlag.on, optionSource(fromFlag, 'size'), optionSource(fromFlag, 'on')], [5, false, 'flag', 'flag']);
    const viaEnvFile = (await parse([], { LR_CONFIG: file })) as Record<string, unknown>;
    assert.equal(viaEnvFile.size, 30);
    assert.equal(optionSource(viaEnvFile, 'config'), 'env');
  });

  it('a bad value is echoed as given, wherever it came from', async () => {
    assert.equal(await parse(['--size', 'abc']), '--size must be a positive integer, got "abc"');
    assert.equal(await parse([], { LR_TEST_SIZE: '1e' }), '--size must be a positive integer, got "1e"');
    assert.equal(await parse(['--config', config('size: lots\n')]), '--size must be a positive integer, got "lots"');
    assert.equal(await parse(['--size']), '--size must be a positive integer, got ""');
  });

  it('a config file is a mapping of this command\'s options, with values of their types', async () => {
    assert.match(String(await parse(['--config', config('nope: 1\n')])), /"nope" is not an option of this command/);
    assert.match(String(await parse(['--config', config('config: other.yaml\n')])), /"config" is not an option of this command/);
    assert.match(String(await parse(['--config', config('on: maybe\n')])), /on must be true or false, got "maybe"/);
    assert.match(String(await parse(['--config', config('name: [a, b]\n')])), /name must be a string, got \["a","b"\]/);
    assert.match(String(await parse(['--config', config('- 1\n')])), /must be a mapping/);
    assert.match(String(await parse(['--config', config('{"size": 7, "size": 8}')])), /not valid YAML or JSON/);
    assert.equal(((await parse(['--config', config('{"size": 7, "name": 42}')])) as Record<string, unknown>).name, '42');
    assert.equal(((await parse(['--config', config('')])) as Record<string, unknown>).size, 10, 'an empty file sets nothing');
  });
});
