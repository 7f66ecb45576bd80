"""The GraphQL schema, in SDL, with its resolvers bound.

It is the part of the Inngest dev server's schema (inngest/inngest pkg/coreapi/gql.*.graphql) that
the SDKs' test suites query, with the same type, field and argument names so that their documents
validate unchanged. The SDL lives in a .py module so that it ships with every kind of install.
"""

from __future__ import annotations

from graphql import GraphQLObjectType, GraphQLSchema, build_schema

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
}

input EventQuery {
  workspaceId: ID! = "local"
  eventId: ID!
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
  "The run as a root span whose children are its settled steps, in the order they settled."
  trace: RunTraceSpan
}

enum RunTraceSpanStatus {
  QUEUED
  RUNNING
  WAITING
  COMPLETED
  FAILED
  CANCELLED
}

type RunTraceSpan {
  spanID: String!
  "The function id for the root span; the user-facing step id for a step."
  name: String!
  status: RunTraceSpanStatus!
  isRoot: Boolean!
  "The step's memo key (hashed id)."
  stepID: String
  attempts: Int
  startedAt: Time
  endedAt: Time
  "Milliseconds."
  duration: Int
  "For runTraceSpanOutputByID; null on the root span."
  outputID: String
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
  "The event as it was sent."
  raw: String
  functionRuns: [FunctionRun!]
}

type FunctionRun {
  id: ID!
  functionID: String!
  status: FunctionRunStatus
  startedAt: Time
  finishedAt: Time
  output: String
}
"""


def build() -> GraphQLSchema:
    schema = build_schema(SDL)
    for type_name, fields in {**RESOLVERS, "Mutation": MUTATIONS}.items():
        object_type = schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType), type_name
        for field_name, resolve in fields.items():
            object_type.fields[field_name].resolve = resolve
    return schema


SCHEMA = build()
