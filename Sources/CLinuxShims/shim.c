#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include "shim.h"

int minihost_start_writeback(int fd, off_t offset, off_t length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

int minihost_collapse_range(int fd, off_t offset, off_t length) {
    return fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, offset, length);
}

int minihost_sync_file_system(int fd) {
    return syncfs(fd);
}

int minihost_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0);
}

int minihost_release_free_memory(void) {
    return malloc_trim(0);
}

int minihost_fix_mmap_threshold(int bytes) {
    return mallopt(M_MMAP_THRESHOLD, bytes);
}

int minihost_reopen_for_direct_writes(int fd) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
}

int minihost_open_for_direct_reads(const char *path) {
    return open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
}

int minihost_terminal_columns(int fd) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) != 0) return 0;
    return size.ws_col;
}
