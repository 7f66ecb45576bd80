"""The GraphQL schema, in SDL, with its resolvers bound.

It is the part of the Inngest dev server's schema (inngest/inngest pkg/coreapi/gql.*.graphql) that
the SDKs' test suites query, with the same type, field and argument names so that their documents
validate unchanged. The SDL lives in a .py module so that it ships with every kind of install.
"""

from __future__ import annotations

from graphql import GraphQLObjectType, GraphQLSchema, build_schema

from headrace.api.gql.events import EVENT_RESOLVERS
from headrace.api.gql.mutations import MUTATIONS
from headrace.api.gql.resolvers import RESOLVERS

SDL = """
"An RFC 3339 time in UTC, with milliseconds."
scalar Time

"A ULID, as text."
scalar ULID

"A JSON value, as text."
scalar Bytes

"A JSON object."
scalar Map

"Any JSON value."
scalar Unknown

type Mutation {
  "Cancel a run (a run that has ended stays as it is); returns the run as it was when asked."
  cancelRun(runID: ULID!): FunctionRun!

  "A new run with the same trigger events; with fromStep, it keeps the steps settled before it."
  rerun(runID: ULID!, fromStep: RerunFromStepInput): ULID!

  "Start a failed run again from the step that failed, keeping the outputs before it."
  replayRun(runID: ULID!): ULID!

  "Cancel a function's open runs started in a time window whose first trigger event matches."
  createCancellation(input: CancellationInput!): Cancellation!

  "Start a function with a payload, as step.invoke does."
  invokeFunction(functionSlug: String!, data: Map, user: Map): Boolean
}

input RerunFromStepInput {
  stepID: String!
}

input CancellationInput {
  "The function's full id, or its id within appID."
  functionID: String!
  appID: String
  startedAfter: Time
  startedBefore: Time!
  "A CEL expression over `event`, the run's first trigger event."
  if: String
}

type Cancellation {
  id: ULID!
  functionID: String!
  startedAfter: Time
  startedBefore: Time!
  if: String
  "The open runs it matched; each is cancelled by the executor shortly after."
  cancelledRunIDs: [ULID!]!
}

type Query {
  "A run of the account. Unknown ids give an error (with a null run), so that pollers poll on."
  run(runID: String!): FunctionRunV2

  "The events that triggered a run."
  runTrigger(runID: String!): RunTraceTrigger

  "The output of a settled step, by the outputID of its span."
  runTraceSpanOutputByID(outputID: String!): RunTraceSpanOutput

  "An event of the account and the runs it started."
  event(query: EventQuery!): Event

  "The account's newest 51 events, newest first, without the engine's own (inngest/...)."
  events(query: EventsQuery!): [Event!]

  "The account's newest events, newest first, each with the runs it started."
  stream(query: StreamQuery!): [StreamItem!]!
}

input EventQuery {
  workspaceId: ID! = "local"
  eventId: ID!
}

input EventsQuery {
  workspaceId: ID! = "local"
}

input StreamQuery {
  "How many events, 1 to 1000."
  limit: Int! = 20
  "Whether to list the events the engine emits itself (inngest/...); by default not."
  includeInternalEvents: Boolean
}

enum StreamType {
  EVENT
  CRON
}

type StreamItem {
  "The event's internal id, as the Event API returned it."
  id: ID!
  "The event's name, or the schedule of a cron tick."
  trigger: String!
  type: StreamType!
  createdAt: Time!
  runs: [FunctionRun]
}

enum FunctionRunStatus {
  QUEUED
  RUNNING
  COMPLETED
  FAILED
  CANCELLED
}

type FunctionRunV2 {
  id: ULID!
  appID: String!
  functionID: String!
  status: FunctionRunStatus!
  startedAt: Time
  endedAt: Time
  triggerIDs: [ULID!]!
  "The return value, or the error object of a failed or cancelled run; null until the run ends."
  output: Bytes
  "The run as a root span: its steps as they settled, then its Finalization. Same for any preview."
  trace(preview: Boolean): RunTraceSpan
}

enum RunTraceSpanStatus {
  QUEUED
  RUNNING
  WAITING
  COMPLETED
  FAILED
  CANCELLED
}

"What a step span does."
enum StepOp {
  RUN
  SLEEP
  WAIT_FOR_EVENT
  INVOKE
}

type RunTraceSpan {
  spanID: String!
  "The function id on the root; a step's own id; Attempt N; Finalization (the function's return)."
  name: String!
  status: RunTraceSpanStatus!
  isRoot: Boolean!
  "The step's memo key (hashed id)."
  stepID: String
  "The step's operation; null on the root and Finalization spans."
  stepOp: StepOp
  "The step's operation; FINALIZATION for the function's return; empty on the root span."
  stepType: String!
  "The attempt (from 0) that settled the step, or that ended the run for Finalization."
  attempts: Int
  startedAt: Time
  endedAt: Time
  "Milliseconds."
  duration: Int
  "For runTraceSpanOutputByID: a step's value or error; on the root span, the run's once ended."
  outputID: String
  "A step's attempts, when it took more than one."
  childrenSpans: [RunTraceSpan!]!
}

type RunTraceSpanOutput {
  "The step's value: what step.run returned, the event a wait received, null for a sleep."
  data: Bytes
  error: StepError
}

type StepError {
  message: String!
  name: String
  stack: String
  "The error's cause as the SDK serialized it (an error object of its own), if any."
  cause: Unknown
}

type RunTraceTrigger {
  eventName: String
  IDs: [ULID!]!
  "Each trigger event as the SDK received it."
  payloads: [Bytes!]!
  timestamp: Time
}

type Event {
  "The internal id that the Event API returned."
  id: ULID!
  "The id the sender gave the event, if any."
  externalID: String
  name: String
  "When headrace received the event."
  createdAt: Time
  "The event's data, as JSON text."
  payload: String
  "The event as it was sent."
  raw: String
  functionRuns: [FunctionRun!]
}

type FunctionRun {
  id: ID!
  functionID: String!
  "Null once the function is no longer synced."
  function: Function
  status: FunctionRunStatus
  startedAt: Time
  finishedAt: Time
  output: String
}

type Function {
  "The function's full id (its app's id, a dash, its own)."
  id: String!
  "The same as id: Inngest's functions have a UUID and a slug, headrace's only the slug."
  slug: String!
  name: String!
  appID: String!
}
"""


def build() -> GraphQLSchema:
    schema = build_schema(SDL)
    resolvers = {**RESOLVERS, **EVENT_RESOLVERS, "Mutation": MUTATIONS}
    resolvers["Query"] = {**RESOLVERS["Query"], **EVENT_RESOLVERS["Query"]}
    for type_name, fields in resolvers.items():
        object_type = schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType), type_name
        for field_name, resolve in fields.items():
            object_type.fields[field_name].resolve = resolve
    return schema


SCHEMA = build()
