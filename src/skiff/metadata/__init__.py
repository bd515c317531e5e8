"""Metadata: SQLite records of images, references and leases; garbage collection.

db.MetadataStore   images, refs, leases (one transaction per state change)
gc.collect         tricolor mark from the roots, sweep unreferenced blobs and snapshots
"""
