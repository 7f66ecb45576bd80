"""The HTTP APIs: the Event API, app sync, the SDKs' `/v0` endpoints, `/v0/gql`, `/v1`, `/dev`."""
