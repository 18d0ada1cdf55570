// fs.h -- file-system helpers: directories made and removed.
#ifndef DRE_FS_H
#define DRE_FS_H

// dre_mkdirs creates path and its parents; existing directories are fine.
// Returns 0, or -1 with errno set.
int dre_mkdirs(const char *path);

// dre_rmtree removes path and everything below it (symbolic links are
// removed, not followed); a missing path is fine. Returns 0, or -1 with
// errno set.
int dre_rmtree(const char *path);

#endif
