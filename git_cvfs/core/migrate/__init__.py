"""migrate: bring history into git-cvfs and take it out again.

info       what across history would become refs, by pattern and size
to_refs    `migrate import`: plain blobs or Git LFS pointers become refs, archived first
to_blobs   `migrate export`: refs become plain git blobs again (no lock-in)
rewrite    the fast-export | rewrite | fast-import pass both share, the refs kept, the push
"""
