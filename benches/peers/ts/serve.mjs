// What both servers share: the dataset, and serving an McpServer over stdio
// (the default) or streamable HTTP (`--http PORT`, port 0 allowed).
//
// HTTP is stateful, one session per client, as in the SDK's
// simpleStreamableHttp example and as the Rust servers do (rmcp's
// LocalSessionManager): `initialize` creates a session (a fresh McpServer and
// StreamableHTTPServerTransport), later requests carry `mcp-session-id`.
// Responses are SSE streams, the SDK's default (enableJsonResponse: false).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

/** Same limits as the Rust servers: 1 MiB per message, 1024 live sessions. */
const BODY_BYTES_MAX = 1 << 20;
const SESSIONS_MAX = 1024;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The demo dataset, `servers/example-data.json`, shared with the Rust servers. */
export function loadData() {
  const file = new URL('../../../servers/example-data.json', import.meta.url);
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Serves `newServer()` (one McpServer per session) as the command line asks. */
export async function serve(name, newServer) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--http');
  if (at === -1) return serveStdio(name, newServer());
  const port = Number(args[at + 1] ?? 'missing');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`${name}: --http needs a port (0 to 65535), got ${args[at + 1]}`);
    process.exit(2);
  }
  return serveHttp(name, newServer, port);
}

async function serveStdio(name, server) {
  const stop = () => server.close().finally(() => process.exit(0));
  // The client closes our stdin to stop us; SIGTERM/SIGINT also stop cleanly.
  process.stdin.on('end', stop);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await server.connect(new StdioServerTransport());
}

async function serveHttp(name, newServer, port) {
  const sessions = new Map(); // session id -> transport

  const reply = (res, status, code, message) => {
    if (res.headersSent) return void res.end();
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
  };

  const handle = async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/mcp') return reply(res, 404, -32000, 'Not found');
    // DNS-rebinding protection, as the Rust servers do: loopback only.
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (!LOOPBACK_HOSTS.has(host)) return reply(res, 403, -32000, `Host not allowed: ${host}`);
    const origin = req.headers.origin;
    if (origin && !LOOPBACK_HOSTS.has(URL.canParse(origin) ? new URL(origin).hostname : '')) {
      return reply(res, 403, -32000, `Origin not allowed: ${origin}`);
    }

    let body;
    if (req.method === 'POST') {
      const chunks = [];
      let size = 0;
      for await (const chunk of req) {
        size += chunk.length;
        if (size > BODY_BYTES_MAX) return reply(res, 413, -32600, 'Request body too large');
        chunks.push(chunk);
      }
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(res, 400, -32700, 'Parse error');
      }
    }

    const sessionId = req.headers['mcp-session-id'];
    let transport = sessionId ? sessions.get(sessionId) : undefined;
    if (!transport) {
      if (sessionId) return reply(res, 404, -32001, 'Session not found');
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        return reply(res, 400, -32000, 'Bad Request: No valid session ID provided');
      }
      if (sessions.size >= SESSIONS_MAX) return reply(res, 503, -32000, 'Too many open sessions');
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void sessions.set(id, transport),
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await newServer().connect(transport);
    }
    await transport.handleRequest(req, res, body);
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((error) => {
      console.error(`${name}: ${error?.stack ?? error}`);
      reply(res, 500, -32603, 'Internal server error');
    });
  });
  await new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, '127.0.0.1', resolve);
  });
  console.error(`listening on http://127.0.0.1:${http.address().port}/mcp`);

  const stop = async () => {
    await Promise.allSettled([...sessions.values()].map((t) => t.close()));
    http.close();
    http.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
