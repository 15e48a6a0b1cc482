import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readVia, status, tsv, waitConverged } from '../helpers/cluster.js';
import { runTool, startFollower, startMaster, tempDir, type FollowerHandle, type MasterHandle } from '../helpers/processes.js';

/** A port nothing listens on (bound, then released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Clients that know several nodes (`--master a,b,c`) or only a follower: the tools find
 * the master among the addresses by their Status, and a write sent to a follower is sent
 * once more to the master its NOT_MASTER names. Reads (get-data, store-digest) and
 * drop-slot find the master the same way; a read asks a lone follower's Status for it.
 */
describe('clients: several master addresses, NOT_MASTER redirect, the replication tree', () => {
  const root = tempDir();
  let master: MasterHandle;
  let f1: FollowerHandle;
  let dead: string;

  before(async () => {
    master = await startMaster(path.join(root, 'master'));
    f1 = await startFollower(1, path.join(root, 'follower-1'), master.address);
    dead = `127.0.0.1:${await freePort()}`;
  });
  after(async () => {
    for (const h of [f1, master]) await h?.proc.kill('SIGKILL');
  });

  it('push-data --master <follower>,<master> writes to the master, with no redirect', async () => {
    const before = BigInt((await status(master.address)).lastSeq);
    const res = await runTool('push-data', ['--master', `${f1.readAddress},${master.address}`, 'several', 'v1']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `${before + 1n}\n`, 'stdout is the seq, as with one address');
    assert.equal(res.stderr, '', 'found by its Status: nothing was refused');
    assert.equal((await status(master.address)).lastSeq, String(before + 1n));
    // --json says the epoch the write was committed in.
    const json = await runTool('push-data', ['--master', `${dead},${f1.readAddress},${master.address}`, '--json', 'several', 'v2']);
    assert.equal(json.code, 0, json.stderr);
    const answer = JSON.parse(json.stdout) as { firstSeq: string; epoch: number };
    assert.equal(answer.firstSeq, String(before + 2n));
    // The master's epoch (0 from a master that does not report it in its answers yet).
    assert.ok(answer.epoch === 0 || answer.epoch === (await status(master.address)).epoch, json.stdout);
  });

  it('push-data --master <follower> is redirected once by NOT_MASTER and succeeds', async () => {
    const res = await runTool('push-data', ['--master', f1.readAddress, 'redirected', 'yes']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, new RegExp(`^push-data: ${re(f1.readAddress)} answered NOT_MASTER; writing to the master at ${re(master.address)}\\n$`));
    const seq = BigInt(res.stdout.trim());
    assert.equal((await status(master.address)).lastSeq, String(seq), 'written once, on the master');
    await waitConverged(master.address, [1]);
    assert.deepEqual(await readVia(f1.readAddress, 'redirected'), { value: 'yes', seq });
    // A bulk load follows the redirect once and then writes to the master directly.
    const bulk = await runTool('push-data', ['--master', f1.readAddress, '--stdin', '--batch-size', '2'], { input: tsv(5, (i) => `rb-${i}`, (i) => `v${i}`) });
    assert.equal(bulk.code, 0, bulk.stderr);
    assert.match(bulk.stdout, new RegExp(`^loaded 5 pairs, seqs ${seq + 1n}\\.\\.${seq + 5n}, in `));
    assert.equal(bulk.stderr.split('\n').filter((l) => l.includes('NOT_MASTER')).length, 1, bulk.stderr);
    // --no-redirect: the follower's refusal is the answer (exit 5), nothing is written.
    const lastSeq = (await status(master.address)).lastSeq;
    const refused = await runTool('push-data', ['--master', f1.readAddress, '--no-redirect', 'stay', 'here']);
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, new RegExp(`follower 1 is read-only and cannot take writes; the master is at ${re(master.address)} \\[NOT_MASTER\\]\n$`));
    assert.equal((await status(master.address)).lastSeq, lastSeq);
  });

  it('no master among the addresses: MASTER_UNAVAILABLE (exit 3) saying what each answered, nothing written', async () => {
    const lastSeq = (await status(master.address)).lastSeq;
    const res = await runTool('push-data', ['--master', `${f1.readAddress},${dead}`, 'nowhere', 'v']);
    assert.equal(res.code, 3, res.stderr);
    assert.match(
      res.stderr,
      new RegExp(
        `^push-data: none of the 2 addresses answered as the master \\(${re(f1.readAddress)}: follower 1\\b.*following the master at ${re(master.address)}; ${re(dead)}: master at ${re(dead)} is unavailable: .*\\); ` +
          `they name ${re(master.address)} as the master: add it to --master \\[MASTER_UNAVAILABLE\\]\\n$`,
      ),
    );
    assert.equal((await status(master.address)).lastSeq, lastSeq);
    // A bad address in the list is a usage error, before anything is asked.
    const bad = await runTool('push-data', ['--master', `${master.address},nope`, 'k', 'v']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--master: address must be host:port, got "nope" \(in a comma-separated list\) \[INVALID_ADDRESS\]/);
  });

  it('replication-status --master <follower>,<master> shows the master; --tree and --json the tree', async () => {
    await waitConverged(master.address, [1]);
    const text = await runTool('replication-status', ['--master', `${f1.readAddress},${dead},${master.address}`]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^master ${re(master.address)}  version \\S+  history [0-9a-f]+ epoch \\d+  node `));
    assert.match(text.stdout, /^1\s+streaming\s/m, 'the follower table, as with one address');

    const tree = await runTool('replication-status', ['--master', `${f1.readAddress},${master.address}`, '--tree']);
    assert.equal(tree.code, 0, tree.stderr);
    const lastSeq = (await status(master.address)).lastSeq;
    assert.match(tree.stdout, new RegExp(`^master ${re(master.address)}  epoch \\d+  lastSeq ${lastSeq}$`, 'm'));
    assert.match(tree.stdout, new RegExp(`^└─ follower 1 ${re(f1.readAddress)}  streaming  applied ${lastSeq}  lag 0  upstream ${re(master.address)}  epoch `, 'm'));
    assert.doesNotMatch(tree.stdout, /^FOLLOWER\s+STATE/m);

    const json = JSON.parse((await runTool('replication-status', ['--master', `${f1.readAddress},${master.address}`, '--json'])).stdout);
    assert.equal(json.role, 'master');
    assert.equal(json.master.address, master.address);
    assert.equal(json.followers[0].upstream, master.address);
    assert.deepEqual([json.tree.role, json.tree.address, json.tree.children.length], ['master', master.address, 1]);
    assert.deepEqual([json.tree.children[0].id, json.tree.children[0].reachable, json.tree.children[0].appliedSeq], [1, true, lastSeq]);

    // One address of a follower: its own view, as before, now with its upstream.
    const own = await runTool('replication-status', ['--master', f1.readAddress]);
    assert.equal(own.code, 0, own.stderr);
    assert.match(own.stdout, new RegExp(`^follower 1 ${re(f1.readAddress)}  state streaming .*  master ${re(master.address)}$`, 'm'));
    assert.match(own.stdout, new RegExp(`^upstream ${re(master.address)}  epoch `, 'm'));
  });

  it('get-data --master <follower>,<master> reads on the master; a follower given alone is followed once', async () => {
    const put = await runTool('push-data', ['--master', master.address, 'on-master', 'mv']);
    assert.equal(put.code, 0, put.stderr);
    const seq = BigInt(put.stdout.trim());
    // No --min-seq: the master answered the write after its own store had it.
    const res = await runTool('get-data', ['--master', `${f1.readAddress},${dead},${master.address}`, 'on-master', '--seq']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'mv\n');
    const line = new RegExp(`^appliedSeq=(\\d+) via=rpc master=${re(master.address)} epoch=\\d+\\n$`).exec(res.stderr);
    assert.ok(line, res.stderr);
    assert.ok(BigInt(line[1]) >= seq, 'read at or after the write');
    // One follower's address: its Status names the master, which is asked once (stderr says so).
    const one = await runTool('get-data', ['--master', f1.readAddress, 'on-master']);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, 'mv\n');
    assert.match(one.stderr, new RegExp(`^get-data: ${re(f1.readAddress)}: follower 1\\b.*following the master at ${re(master.address)}; reading on the master at ${re(master.address)}\\n$`));
    const missing = await runTool('get-data', ['--master', `${f1.readAddress},${master.address}`, 'no-such-key']);
    assert.equal(missing.code, 1, missing.stderr);
    assert.equal(missing.stderr, `get-data: key "no-such-key" not found on the master at ${master.address}\n`);
    // No master among the addresses: MASTER_UNAVAILABLE (exit 3), as push-data; nothing read from the follower.
    const none = await runTool('get-data', ['--master', `${f1.readAddress},${dead}`, 'on-master']);
    assert.equal(none.code, 3, none.stderr);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /none of the 2 addresses answered as the master .*\[MASTER_UNAVAILABLE\]\n$/);
    // LR_MASTER_ADDRESS applies to a <key> alone; an <id> <key> still reads that follower, as before.
    const viaEnv = await runTool('get-data', ['on-master'], { env: { LR_MASTER_ADDRESS: `${f1.readAddress},${master.address}` } });
    assert.equal(viaEnv.stdout, 'mv\n', viaEnv.stderr);
    const byId = await runTool('get-data', ['1', 'on-master', '--data-root', root, '--min-seq', String(seq), '--seq'], { env: { LR_MASTER_ADDRESS: dead } });
    assert.equal(byId.stdout, 'mv\n', byId.stderr);
    assert.doesNotMatch(byId.stderr, /master=/);
    // Bad command lines: an id, --address or --data-root beside a --master flag.
    for (const args of [['--master', master.address, '1', 'k'], ['--master', master.address, '--address', f1.readAddress, 'k'], ['--master', master.address, '--data-root', root, 'k']]) {
      const bad = await runTool('get-data', args);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, /^get-data: .*\(see --help\) \[INVALID_ARGUMENT\]\n$/);
    }
  });

  it('store-digest --master <follower>,<master> digests the master, beside --address nodes', async () => {
    await waitConverged(master.address, [1]);
    const res = await runTool('store-digest', ['--master', `${f1.readAddress},${master.address}`, '--address', `${f1.readAddress},${master.address}`, '--json']);
    assert.equal(res.code, 0, res.stderr);
    const rows = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as { node: string; digest: string; seq: string; via: string });
    // The master found is digested once, though --address lists it too.
    assert.deepEqual(rows.map((r) => r.node), [`master@${master.address}`, f1.readAddress]);
    assert.equal(rows[0].digest, rows[1].digest);
    assert.equal(rows[0].seq, (await status(master.address)).lastSeq);
    // A follower alone: followed once to the master it names.
    const one = await runTool('store-digest', ['--master', f1.readAddress]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`^master@${re(master.address)} +${rows[0].digest}  seq=${rows[0].seq} keys=\\d+\\n$`));
    assert.match(one.stderr, new RegExp(`^store-digest: ${re(f1.readAddress)}: follower 1\\b.*; digesting the master at ${re(master.address)}\\n$`));
    const bad = await runTool('store-digest', ['--master', master.address, '--data-root', root]);
    assert.equal(bad.code, 2, bad.stderr);
  });

  it('an unreachable follower is shown as unreachable in the tree, not an error', async () => {
    await f1.proc.kill('SIGKILL');
    const tree = await runTool('replication-status', ['--master', master.address, '--tree']);
    assert.equal(tree.code, 0, tree.stderr);
    assert.match(tree.stdout, new RegExp(`^└─ follower 1 ${re(f1.readAddress)}  UNREACHABLE  \\S+  applied \\d+ \\(as its upstream last heard\\)  lag \\d+: .*FOLLOWER_UNAVAILABLE`, 'm'));
    const json = JSON.parse((await runTool('replication-status', ['--master', master.address, '--json'])).stdout);
    assert.equal(json.tree.children[0].reachable, false);
    assert.equal(json.followers[0].upstream, null);
  });

  it('replication-admin drop-slot --master <unreachable>,<follower>,<master> drops the slot on the master', async () => {
    const res = await runTool('replication-admin', ['drop-slot', '1', '--force', '--master', `${dead},${f1.readAddress},${master.address}`, '--json']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal((JSON.parse(res.stdout) as { followerId: number }).followerId, 1);
    assert.equal((await status(master.address)).followers.some((f) => f.followerId === 1), false, 'the master forgot follower 1');
  });
});
