#ifndef NXC_CARCHIVE_SHIM_H
#define NXC_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#include <sys/xattr.h>
/* The AE_IF* macros are expressions Swift cannot import: re-export them. */
static const unsigned int NXC_AE_IFMT = AE_IFMT;
static const unsigned int NXC_AE_IFREG = AE_IFREG;
static const unsigned int NXC_AE_IFDIR = AE_IFDIR;
static const unsigned int NXC_AE_IFLNK = AE_IFLNK;
static const unsigned int NXC_AE_IFCHR = AE_IFCHR;
static const unsigned int NXC_AE_IFBLK = AE_IFBLK;
static const unsigned int NXC_AE_IFIFO = AE_IFIFO;
static const unsigned int NXC_AE_IFSOCK = AE_IFSOCK;
#endif
