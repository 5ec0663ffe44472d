// The 2-hop demo as a benchmark, with the official TypeScript MCP SDK on both
// ends. Starts user-server.mjs and payment-server.mjs (stdio: spawned by the
// SDK's StdioClientTransport; http: child processes on port 0), connects one
// SDK Client to each, then asks "What are the recent transactions for
// bob@example.com?" N times in sequence: getUserIdByEmail, then
// getTransactionsUsingUserId with the id it returned. Prints one JSON line:
//   {"impl":"typescript-sdk","transport":"stdio","queries":N,"p50_us":..,"p99_us":..,"qps":..,"errors":0}
//
//   node bench.mjs --transport stdio|http --queries N [--warmup W]
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const EMAIL = 'bob@example.com';
const BOB = 'b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f';
/** Bob's transactions, newest first: Coffee, Groceries, Dinner, Online Course. */
const BOB_TRANSACTIONS = ['2', '1', '4', '6'];
const USAGE = 'usage: node bench.mjs --transport stdio|http --queries N [--warmup W]';

function parseArgs(argv) {
  const options = { transport: 'stdio', queries: 1000, warmup: 100 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--transport' && (value === 'stdio' || value === 'http')) options.transport = value;
    else if ((flag === '--queries' || flag === '--warmup') && /^\d+$/.test(value ?? '')) {
      options[flag.slice(2)] = Number(value);
    } else throw Object.assign(new Error(`bad argument ${flag} ${value ?? ''}\n${USAGE}`), { usage: true });
  }
  if (options.queries < 1) throw Object.assign(new Error(`--queries must be at least 1\n${USAGE}`), { usage: true });
  return options;
}

// Every child process we start, so that none outlives us, whatever happens.
const children = new Set(); // ChildProcess (http) or StdioClientTransport (stdio)
process.on('exit', () => {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(130));

const serverPath = (file) => fileURLToPath(new URL(file, import.meta.url));

/** Spawns `node FILE --http 0` and resolves to the URL it prints on stderr. */
function startHttpServer(file) {
  const child = spawn(process.execPath, [serverPath(file), '--http', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => fail(new Error(`${file} printed no URL within 10 s`)), 10_000);
    const fail = (error) => {
      clearTimeout(timer);
      reject(new Error(`${error.message}\n${seen}`));
    };
    const onData = (chunk) => {
      seen += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(seen);
      if (!match) return;
      clearTimeout(timer);
      child.stderr.off('data', onData);
      child.off('exit', onExit);
      child.stderr.pipe(process.stderr); // anything later, such as errors
      resolve({ child, url: new URL(match[1]) });
    };
    const onExit = (code, signal) => fail(new Error(`${file} exited (${signal ?? code}) before listening`));
    child.stderr.setEncoding('utf8').on('data', onData);
    child.once('exit', onExit);
    child.once('error', fail);
  });
}

async function stopChild(child) {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }
  children.delete(child);
}

/** One SDK client connected to one server; `close()` also stops the server. */
async function connect(file, transport) {
  const client = new Client({ name: 'bench-2hop', version: '0.1.0' });
  let close;
  if (transport === 'stdio') {
    const stdio = new StdioClientTransport({ command: process.execPath, args: [serverPath(file)] });
    children.add(stdio); // its pid is known once connect() has spawned it
    await client.connect(stdio);
    close = async () => {
      await client.close(); // ends the server's stdin; it exits (SIGTERM after 2 s)
      children.delete(stdio);
    };
  } else {
    const { child, url } = await startHttpServer(file);
    const http = new StreamableHTTPClientTransport(url);
    await client.connect(http);
    close = async () => {
      await http.terminateSession().catch(() => {}); // DELETE /mcp: end the session
      await client.close();
      await stopChild(child);
    };
  }
  // As an MCP host does once per server; it also lets the client check
  // structuredContent against each tool's outputSchema.
  await client.listTools();
  return { client, close };
}

/** One 2-hop query; throws unless the answer is Bob's 4 transactions. */
async function ask(users, payments) {
  const found = await users.callTool({ name: 'getUserIdByEmail', arguments: { email: EMAIL } });
  if (found.isError) throw new Error(`getUserIdByEmail failed: ${JSON.stringify(found.content)}`);
  const userId = found.content?.[0]?.text;
  if (userId !== BOB || found.structuredContent?.userId !== BOB) {
    throw new Error(`getUserIdByEmail answered ${JSON.stringify(found)}`);
  }
  const listed = await payments.callTool({ name: 'getTransactionsUsingUserId', arguments: { userId } });
  if (listed.isError) throw new Error(`getTransactionsUsingUserId failed: ${JSON.stringify(listed.content)}`);
  const transactions = JSON.parse(listed.content?.[0]?.text ?? 'null');
  const ids = Array.isArray(transactions) ? transactions.map((t) => t.userId === BOB && t.id) : null;
  if (
    JSON.stringify(ids) !== JSON.stringify(BOB_TRANSACTIONS) ||
    listed.structuredContent?.total !== BOB_TRANSACTIONS.length
  ) {
    throw new Error(`expected Bob's 4 transactions, got ${JSON.stringify(listed)}`);
  }
  return transactions;
}

/** Nearest-rank percentile of sorted nanoseconds, in whole microseconds. */
function percentileUs(sorted, p) {
  const rank = Math.min(Math.max(Math.ceil(p * sorted.length), 1), sorted.length);
  return Number(sorted[rank - 1] / 1000n);
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const servers = [];
  try {
    const users = await connect('./user-server.mjs', options.transport);
    servers.push(users);
    const payments = await connect('./payment-server.mjs', options.transport);
    servers.push(payments);

    for (let i = 0; i < options.warmup; i++) await ask(users.client, payments.client);

    const latencies = new Array(options.queries);
    const started = process.hrtime.bigint();
    for (let i = 0; i < options.queries; i++) {
      const begun = process.hrtime.bigint();
      await ask(users.client, payments.client);
      latencies[i] = process.hrtime.bigint() - begun;
    }
    const elapsed = process.hrtime.bigint() - started;

    latencies.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const report = {
      impl: 'typescript-sdk',
      transport: options.transport,
      queries: options.queries,
      p50_us: percentileUs(latencies, 0.5),
      p99_us: percentileUs(latencies, 0.99),
      qps: Math.round(options.queries / (Number(elapsed) / 1e9)),
      errors: 0,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await Promise.allSettled(servers.map((server) => server.close()));
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`bench failed: ${error?.usage ? error.message : (error?.stack ?? error)}`);
    process.exit(1); // the exit handler kills any server still running
  },
);
