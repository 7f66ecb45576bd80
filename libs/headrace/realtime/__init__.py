"""Inngest Realtime: messages published from functions (`step.realtime.publish`,
`inngest.realtime.publish`) streamed over WebSockets to the subscribers of their account's
channel and topic (the SDK's `subscribe`). Ephemeral: a message reaches the subscribers connected
when it is published, at most once, and is kept nowhere (docs/ts-sdk-protocol.md)."""
