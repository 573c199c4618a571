"""Pure domain: types, schema, errors, time and hashing. No I/O."""
