/* nnft_io: the file side of the core. NPY read/write of matrices, SHA-256 of bytes and files,
 * atomic file writes (temporary file in the same directory, checked flush/close, rename),
 * mkdir -p, and the shortest round-trip text form of a double (for CSV and JSON).
 *
 * Functions that touch the file system take a message buffer `why` (may be NULL) of why_len
 * bytes as their last arguments: on failure it receives a sentence naming the path and the
 * cause (the errno text, or what is wrong with the file's format), ready to be put after
 * "<function>: " in an error message. Nothing here prints, exits or aborts. */
#ifndef NNFT_IO_H
#define NNFT_IO_H

#include <stddef.h>
#include <stdint.h>

#include "nnft_mat.h"
#include "nnft_status.h"

/* ---- SHA-256 (FIPS 180-4) ---- */

typedef struct nnft_sha256 {
  uint32_t h[8];
  uint64_t bytes;          /* message length so far */
  unsigned char buf[64];   /* partial block */
  size_t nbuf;
} nnft_sha256;

/* Start, feed, finish a SHA-256 digest. O(n) in the bytes fed. */
void nnft_sha256_init(nnft_sha256 *c);
void nnft_sha256_update(nnft_sha256 *c, const void *data, size_t n);
void nnft_sha256_final(nnft_sha256 *c, unsigned char digest[32]);
/* One-shot digest of n bytes, written as 64 lowercase hex digits plus NUL into hex. */
void nnft_sha256_hex(const void *data, size_t n, char hex[65]);
/* SHA-256 of a file's contents as 64 hex digits. NNFT_EIO if it cannot be opened or read. */
nnft_status nnft_io_sha256_file(const char *path, char hex[65], char *why, size_t why_len);

/* ---- atomic writes and directories ---- */

/* Write n bytes to path atomically: they go to a new temporary file beside path
 * ("<path>.tmp-<pid>-<k>"), which is flushed, synced, closed (each step checked) and then
 * renamed over path. On any failure the temporary file is removed, an existing file at path is
 * left untouched, and NNFT_EIO is returned (NNFT_ENOMEM if the temporary name cannot be
 * allocated). */
nnft_status nnft_io_write_atomic(const char *path, const void *data, size_t n, char *why,
                                 size_t why_len);
/* Create directory path and its missing parents (mode 0777 & ~umask), like `mkdir -p`.
 * An existing directory is fine; an existing non-directory is NNFT_EIO (ENOTDIR). */
nnft_status nnft_io_mkdir_p(const char *path, char *why, size_t why_len);

/* ---- NPY (numpy's .npy format, versions 1.0, 2.0 and 3.0) ---- */

/* What an NPY header says about the array. Shapes () and (n,) read as 1x1 and n x 1. */
typedef struct nnft_npy_header {
  size_t rows, cols;
  int ndim;           /* 0, 1 or 2 */
  int fortran_order;  /* 1: column-major data, 0: row-major (C order) */
  size_t data_offset; /* bytes before the data */
} nnft_npy_header;

/* Write m (any ld) to path as a 2-D float64 little-endian array in Fortran order (NPY 1.0),
 * atomically as nnft_io_write_atomic. O(rows*cols). */
nnft_status nnft_io_npy_write(const char *path, const nnft_mat *m, char *why, size_t why_len);
/* Read and validate an NPY file's header: magic, version, dtype '<f8' (float64 little
 * endian), at most 2 dimensions, and a file size that holds exactly the data. NNFT_EIO for an
 * unreadable file, NNFT_EFORMAT (with the reason in why) for anything else wrong. */
nnft_status nnft_io_npy_read_header(const char *path, nnft_npy_header *h, char *why,
                                    size_t why_len);
/* Read the data of the NPY file at path into out, which the caller allocated with the shape
 * nnft_io_npy_read_header reported (the header is read again and must still match, otherwise
 * NNFT_EFORMAT). C-order data is transposed on the fly. O(rows*cols), no allocation. */
nnft_status nnft_io_npy_read(const char *path, nnft_mat *out, char *why, size_t why_len);

/* ---- numbers as text ---- */

/* The shortest of %.15g, %.16g, %.17g that reads back as exactly x; "nan", "inf", "-inf" for
 * non-finite values. buf needs 32 bytes. Returns the length written. */
size_t nnft_io_format_double(double x, char buf[32]);

#endif
