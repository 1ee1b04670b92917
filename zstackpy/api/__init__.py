"""The public API: message declarations, the HTTP front-ends, queries, jobs and events."""
