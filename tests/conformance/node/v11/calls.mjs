// Real @trpc/client 11.25.2 making arbitrary calls, for end-to-end tests of the gateway's own procedures:
//   node calls.mjs <baseUrl> <link> <none|superjson> '<calls json>' ['<headers json>']
// <calls json>: [{"type": "query" | "mutation", "path": "stripe.getConfig", "input": <json, optional>}, ...]
// All calls are fired in the same tick (a batch link sends them as ONE request); stdout: a JSON array of results
// in call order, each {"ok": true, "data": ...} or {"ok": false, "error": {...}} as in ../scenarios.mjs.
import { createTRPCClient, httpLink, httpBatchLink, httpBatchStreamLink } from '@trpc/client';
import superjson from 'superjson';
import { settle } from '../scenarios.mjs';

const LINKS = { httpLink, httpBatchLink, httpBatchStreamLink };
const [baseUrl, linkName, transformer, callsJson, headersJson] = process.argv.slice(2);
const link = LINKS[linkName];
if (!baseUrl || !link || !callsJson) {
  console.error('usage: node calls.mjs <baseUrl> <link> <none|superjson> <calls json> [headers json]');
  process.exit(2);
}
const headers = headersJson ? JSON.parse(headersJson) : {};
const client = createTRPCClient({
  links: [
    link({
      url: baseUrl,
      headers: () => headers,
      ...(transformer === 'superjson' ? { transformer: superjson } : {}),
    }),
  ],
});

function procedure(path) {
  return path.split('.').reduce((node, name) => node[name], client);
}

const calls = JSON.parse(callsJson);
const results = await Promise.all(
  calls.map(({ type, path, input }) => {
    const proc = procedure(path);
    return settle(type === 'mutation' ? proc.mutate(input) : proc.query(input));
  }),
);
process.stdout.write(JSON.stringify(results));
