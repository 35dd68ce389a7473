// Drives a graphrun server with the official JavaScript client, @langchain/langgraph-sdk, and prints what the client
// saw as ONE JSON document on stdout. The assertions live in tests/acceptance/test_js_client.py; this script only
// collects, so that a failure there shows exactly what the client received.
//
// Usage: node tests/js/flows.mjs <server url>
// Exits non-zero, with the error on stderr, if the client throws anywhere.

import { readFileSync } from "node:fs";

import { Client } from "@langchain/langgraph-sdk";

const TOKENS = 5; // the `tokens` graph answers "tok0 tok1 … tok<TOKENS-1>"
const REQUEST_TIMEOUT_MS = 30_000;
const HUMAN_INPUT = { messages: [{ role: "user", content: "hi" }] };

function sdkVersion() {
  const manifest = new URL("./node_modules/@langchain/langgraph-sdk/package.json", import.meta.url);
  return JSON.parse(readFileSync(manifest, "utf8")).version;
}

/** Every part a stream yields, as {id, event, data}; `id` is null when the server sent none. */
async function collect(parts) {
  const events = [];
  for await (const part of parts) {
    events.push({ id: part.id ?? null, event: part.event, data: part.data ?? null });
  }
  return events;
}

/** a. One streamed run of `tokens` with values, messages-tuple and custom modes. */
async function streamTokens(client) {
  const thread = await client.threads.create();
  let created = null; // what the client read from Content-Location, independent of the events
  const events = await collect(
    client.runs.stream(thread.thread_id, "tokens", {
      input: HUMAN_INPUT,
      streamMode: ["values", "messages-tuple", "custom"],
      config: { configurable: { tokens: TOKENS } },
      onRunCreated: (meta) => {
        created = meta;
      },
    }),
  );
  return { thread_id: thread.thread_id, created, events };
}

/** b. A resumable run of `tokens`, then joins of its stream: from the id of its second event, and from "-1". */
async function resumeTokens(client) {
  const thread = await client.threads.create();
  let created = null;
  const events = await collect(
    client.runs.stream(thread.thread_id, "tokens", {
      input: HUMAN_INPUT,
      streamMode: ["messages-tuple"],
      streamResumable: true,
      config: { configurable: { tokens: TOKENS } },
      onRunCreated: (meta) => {
        created = meta;
      },
    }),
  );
  if (created === null) throw new Error("the client found no run id in the stream response's Content-Location");
  // The SDK yields each SSE event's `id` (its types declare `id?: string` on joinStream's parts and the SSE decoder
  // fills it for runs.stream too), so the join resumes from a real id; "-1" would mean "replay everything".
  const lastEventId = events[1]?.id;
  if (!lastEventId) throw new Error(`the second event carries no id: ${JSON.stringify(events.slice(0, 2))}`);
  const joined = await collect(client.runs.joinStream(thread.thread_id, created.run_id, { lastEventId }));
  // "-1" asks for the whole run again, as a UI does when it reloads and knows no event id.
  const replayed = await collect(client.runs.joinStream(thread.thread_id, created.run_id, { lastEventId: "-1" }));
  return { thread_id: thread.thread_id, created, events, last_event_id: lastEventId, joined, replayed };
}

/** c. `approval` stops at its interrupt; the thread shows it; a resume command finishes the run. The resume
 * carries `input: {}` beside `command`, as the chat UI built on `useStream` sends it: the command wins. */
async function approvalRoundTrip(client) {
  const thread = await client.threads.create();
  const first = await client.runs.wait(thread.thread_id, "approval", { input: { draft: "hello" } });
  const interrupted = await client.threads.get(thread.thread_id);
  const resumed = await client.runs.wait(thread.thread_id, "approval", {
    input: {},
    command: { resume: { approved: true, note: "ok" } },
  });
  const finished = await client.threads.get(thread.thread_id);
  const state = await client.threads.getState(thread.thread_id);
  return { thread_id: thread.thread_id, first, interrupted, resumed, finished, state };
}

async function main() {
  const url = process.argv[2];
  if (!url) throw new Error("usage: node flows.mjs <server url>");
  const client = new Client({
    apiUrl: url,
    apiKey: null, // never pick up a key from the environment
    timeoutMs: REQUEST_TIMEOUT_MS,
    // No silent retries: a server error must reach the test, and a retried POST would create a second run.
    callerOptions: { maxRetries: 0 },
  });
  const result = {
    sdk_version: sdkVersion(),
    stream: await streamTokens(client),
    resumable: await resumeTokens(client),
    approval: await approvalRoundTrip(client),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  if (error?.cause) process.stderr.write(`caused by: ${error.cause?.stack ?? error.cause}\n`);
  process.exitCode = 1;
});
