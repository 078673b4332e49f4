"""The profiler: one profile per exercise, shared by every plan that uses it."""
