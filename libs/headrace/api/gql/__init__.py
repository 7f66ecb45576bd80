"""The dev server's GraphQL read API (`/v0/gql`): runs, their step outputs and trigger events."""
