"""Pure domain code: no I/O, no AWS, no network."""
