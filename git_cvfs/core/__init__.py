"""What git-cvfs does, over a shared model of a repository.

    core/model/      the shared model every operation builds on (imports no operation)
        workspace     what an operation needs about one repository: settings, cache, archives
        managed       which files git-cvfs manages and the state of each on this machine
        holdings      what the archives hold: asked of them, or this machine's records offline
        refscan       the refs among many git blobs, read in batches
        copies        how many archives hold a verified copy, asked when bytes are about to go
        lean_cache    the lean cache: the cache copy goes once the archive and work tree hold it
        pathspecs     paths a user names must match managed files, as git's pathspecs must
        buffer        content held in memory up to a bound, then spilled
        revision      one commit's tree as a mount or cvfs:// shows it: paths, modes, real sizes
        hydrate       objects fetched into the cache in the order readers need them, under a budget

    core/plumbing/   what git runs
        filter, filter_process, single_filter    clean and smudge
        hook_shims (installs the hook scripts), hooks (what each hook does)
        textconv (what git diff shows), merge_index (the inventory shards' merge driver)

    core/*.py        the operations, one per command or pair of commands:
        setup (install, init, track), ensure (ensure, fetch, preflight), push, offload, prune,
        guard, status, reconcile, fsck, resolve, register, scan, ingest, export (archive),
        trust, doctor, bare (audits in a bare repository), demo (try), mount and mount_fs
        (mount, umount), budget (worktree.budget), gc

    core/migrate/    history in and out: info, to_refs (import, --from-lfs), to_blobs (export),
                     rewrite (the fast-export | fast-import pass they share)

docs/ARCHITECTURE.md has the layers and the main flows through these modules.
"""
