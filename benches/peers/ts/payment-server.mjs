// The payment ledger: MCP tool `getTransactionsUsingUserId {userId, count?}`,
// as the original workshop demo's payment server and the Rust
// `payment-server` (servers/payment).
//   node payment-server.mjs              # stdio
//   node payment-server.mjs --http 8083  # streamable HTTP at http://127.0.0.1:8083/mcp
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import * as z from 'zod';
import { loadData, serve } from './serve.mjs';

const COUNT_MAX = 1000;
const ID_BYTES_MAX = 128;

/** Money is exact: the decimal string with the currency's ISO 4217 decimal
 * places, and the same value in integer minor units. Never a float. */
function money(amount, currency) {
  const places = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
    .maximumFractionDigits;
  const [whole, fraction = ''] = amount.split('.');
  const digits = fraction.padEnd(places, '0');
  return {
    amount: places ? `${whole}.${digits}` : whole,
    amountMinor: Number(BigInt(whole + digits)),
  };
}

/** Each user's transactions, newest first: date descending; on the same day,
 * the transaction listed later in the dataset first. */
const byUser = new Map();
loadData()
  .transactions.map((t, index) => ({ t, index }))
  .sort((a, b) => (a.t.date === b.t.date ? b.index - a.index : a.t.date < b.t.date ? 1 : -1))
  .forEach(({ t }) => {
    const view = {
      id: t.id,
      userId: t.userId,
      ...money(t.amount, t.currency),
      currency: t.currency,
      description: t.description,
      date: t.date,
    };
    if (!byUser.has(t.userId)) byUser.set(t.userId, []);
    byUser.get(t.userId).push(view);
  });

const transactionSchema = z.object({
  id: z.string(),
  userId: z.string(),
  amount: z.string().describe('Decimal string in major units, e.g. "12.50".'),
  amountMinor: z.number().int().min(0).describe('The same amount in minor units, e.g. 1250.'),
  currency: z.string().describe('ISO 4217 currency code, e.g. "GBP".'),
  description: z.string(),
  date: z.string().describe('Calendar date, YYYY-MM-DD.'),
});

function newServer() {
  const server = new McpServer(
    { name: 'payment-server', version: '0.1.0' },
    {
      instructions:
        "Payment ledger. getTransactionsUsingUserId lists a user's transactions newest " +
        'first; get the user id from the user directory first.',
    },
  );
  server.registerTool(
    'getTransactionsUsingUserId',
    {
      description:
        "List a user's transactions, newest first, optionally only the newest " +
        '`count`. Returns a JSON array as text, and {userId, transactions, ' +
        'total} as structured content. An unknown user id gives an empty list.',
      inputSchema: z.strictObject({
        userId: z.string().describe("The user's id, as returned by the user server's getUserIdByEmail."),
        count: z
          .number()
          .int()
          .min(1)
          .max(COUNT_MAX)
          .optional()
          .describe(`How many of the newest transactions to return, 1 to ${COUNT_MAX}. Omit it for all of them (at most ${COUNT_MAX}).`),
      }),
      outputSchema: {
        userId: z.string(),
        transactions: z
          .array(transactionSchema)
          .describe('Newest first (date descending; on the same day, the later-recorded first).'),
        total: z.number().int().min(0).describe("How many transactions the user has in all, before the cut to `count`."),
      },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    async ({ userId, count }) => {
      if (userId.length === 0 || Buffer.byteLength(userId) > ID_BYTES_MAX) {
        return { content: [{ type: 'text', text: `userId must be 1 to ${ID_BYTES_MAX} bytes` }], isError: true };
      }
      // An unknown user id gives an empty list, not an error (separate systems).
      const all = byUser.get(userId) ?? [];
      const transactions = all.slice(0, count ?? COUNT_MAX);
      return {
        content: [{ type: 'text', text: JSON.stringify(transactions) }],
        structuredContent: { userId, transactions, total: all.length },
      };
    },
  );
  return server;
}

await serve('payment-server', newServer);
