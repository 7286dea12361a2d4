// Real @trpc/client 10.45.4 driver: node client.mjs <baseUrl> <link> <none|superjson> [scenario]
// Scenarios and the output format are in ../scenarios.mjs (shared with the v11 driver).
import { createTRPCProxyClient, httpLink, httpBatchLink, unstable_httpBatchStreamLink } from '@trpc/client';
import superjson from 'superjson';
import { runDriver } from '../scenarios.mjs';

const LINKS = { httpLink, httpBatchLink, unstable_httpBatchStreamLink };

await runDriver({
  links: Object.keys(LINKS),
  // v10: the transformer is set on the client, not on the link. No maxURLLength.
  makeClient: (url, link, transformer) =>
    createTRPCProxyClient({
      ...(transformer === 'superjson' ? { transformer: superjson } : {}),
      links: [LINKS[link]({ url })],
    }),
});
