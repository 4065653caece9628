#ifndef MINIHOST_CLINUXSHIMS_SHIM_H
#define MINIHOST_CLINUXSHIMS_SHIM_H

#include <sys/types.h>

/// Starts writeback of a file range without waiting for it
/// (sync_file_range with SYNC_FILE_RANGE_WRITE). Returns 0, or -1 with errno.
/// Swift's Glibc module doesn't define _GNU_SOURCE, which declares it.
int minihost_start_writeback(int fd, off_t offset, off_t length);

#endif
