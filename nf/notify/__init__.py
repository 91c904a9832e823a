"""The persisted outbox towards peers (SMFs, PCFs): notifications survive restarts, are
retried with backoff, are bounded, and the latest of a coalescing key wins."""
