"""HTTP routes, one blueprint per group; each is a thin adapter onto plain functions."""
