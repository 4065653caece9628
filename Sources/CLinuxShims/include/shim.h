#ifndef MINIHOST_CLINUXSHIMS_SHIM_H
#define MINIHOST_CLINUXSHIMS_SHIM_H

#include <sys/types.h>

// Swift's Glibc module doesn't define _GNU_SOURCE, which declares these
// Linux calls; each returns what the call does (-1 with errno on failure).

/// Starts writeback of a file range without waiting for it
/// (sync_file_range with SYNC_FILE_RANGE_WRITE).
int minihost_start_writeback(int fd, off_t offset, off_t length);

/// Removes `length` bytes at `offset` from a file, shifting the rest down
/// (fallocate with FALLOC_FL_COLLAPSE_RANGE). ext4 and XFS support it for
/// block-aligned ranges; other file systems fail with EOPNOTSUPP or EINVAL.
int minihost_collapse_range(int fd, off_t offset, off_t length);

/// Opens the file behind `fd` again for writing with O_DIRECT (through
/// /proc/self/fd, so it works for any descriptor): writes from it skip the
/// page cache. -1 with errno when the file system or /proc refuses.
int minihost_reopen_for_direct_writes(int fd);

/// Opens `path` for reading with O_DIRECT: reads skip the page cache, and
/// must be aligned. -1 with errno when the file system refuses.
int minihost_open_for_direct_reads(const char *path);

/// Flushes every file system buffer of the file system holding `fd` (syncfs).
int minihost_sync_file_system(int fd);

/// Asks the kernel to send `signal` to this process when its parent dies
/// (prctl PR_SET_PDEATHSIG); kept across execve.
int minihost_set_parent_death_signal(int signal);

/// The width in columns of the terminal behind `fd` (ioctl TIOCGWINSZ):
/// 0 when `fd` is no terminal or the terminal doesn't say.
int minihost_terminal_columns(int fd);

/// Returns freed heap memory in every malloc arena to the kernel
/// (malloc_trim(0)); 1 if any was returned, 0 if none could be.
int minihost_release_free_memory(void);

/// Fixes malloc's mmap threshold at `bytes` (mallopt M_MMAP_THRESHOLD),
/// which also stops glibc raising it as large blocks are freed. Returns 1 on
/// success, 0 on failure.
int minihost_fix_mmap_threshold(int bytes);

#endif
