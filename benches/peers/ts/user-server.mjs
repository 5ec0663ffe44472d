// The user directory: MCP tool `getUserIdByEmail {email}`, as the original
// workshop demo's user server and the Rust `user-server` (servers/user).
//   node user-server.mjs              # stdio
//   node user-server.mjs --http 8082  # streamable HTTP at http://127.0.0.1:8082/mcp
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { loadData, serve } from './serve.mjs';

const { users } = loadData();
const byEmail = new Map(users.map((user) => [user.email.trim().toLowerCase(), user]));

const error = (text) => ({ content: [{ type: 'text', text }], isError: true });

function newServer() {
  const server = new McpServer(
    { name: 'user-server', version: '0.1.0' },
    {
      instructions:
        'User directory. getUserIdByEmail turns an email address into the user id ' +
        'that other systems (such as the payment server) key their records by.',
    },
  );
  server.registerTool(
    'getUserIdByEmail',
    {
      description:
        "Look up a user's id by email address (case-insensitive). Returns the id " +
        'as text, and {userId, email, name} as structured content.',
      inputSchema: z.strictObject({
        email: z
          .string()
          .describe("The user's email address. Matching ignores case and surrounding whitespace."),
      }),
      outputSchema: {
        userId: z.string().describe("The user's id, as the payment server knows it."),
        email: z.string().describe('The email as stored, which may differ in case from the one asked for.'),
        name: z.string().describe("The user's display name."),
      },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    async ({ email }) => {
      const trimmed = email.trim();
      if (!trimmed.includes('@')) {
        return error(`Invalid email address ${JSON.stringify(trimmed)}: missing separator character '@'`);
      }
      const user = byEmail.get(trimmed.toLowerCase());
      if (!user) return error(`User with email ${trimmed} not found`);
      return {
        content: [{ type: 'text', text: user.id }],
        structuredContent: { userId: user.id, email: user.email, name: user.name },
      };
    },
  );
  return server;
}

await serve('user-server', newServer);
