"""The Zarr store: its layout, its readers and writers, and the task records.

The layout is documented in docs/store.md.
"""
