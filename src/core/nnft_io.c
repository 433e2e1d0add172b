#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* fdopen, fsync, mkdir, O_CLOEXEC */
#endif
#include "nnft_io.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "nnft_alloc.h"

/* Format the reason for a failure into why (if given). */
static void say(char *why, size_t why_len, const char *fmt, ...) {
  if (!why || why_len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, why_len, fmt, ap);
  va_end(ap);
}

static nnft_status io_fail(char *why, size_t why_len, const char *verb, const char *path,
                           int err) {
  say(why, why_len, "cannot %s '%s': %s", verb, path, strerror(err));
  return NNFT_EIO;
}

/* ================================ SHA-256 ================================ */

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha_block(uint32_t h[8], const unsigned char *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
                  sha_k[i] + w[i];
    uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

/* FIPS 180-4 §5.3.3: the initial hash value. */
void nnft_sha256_init(nnft_sha256 *c) {
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, h0, sizeof h0);
  c->bytes = 0;
  c->nbuf = 0;
}

/* Absorb n bytes: whole 64-byte blocks are compressed directly, the rest buffered. */
void nnft_sha256_update(nnft_sha256 *c, const void *data, size_t n) {
  const unsigned char *p = data;
  c->bytes += n;
  if (c->nbuf) {
    size_t take = 64 - c->nbuf < n ? 64 - c->nbuf : n;
    memcpy(c->buf + c->nbuf, p, take);
    c->nbuf += take;
    p += take;
    n -= take;
    if (c->nbuf < 64) return;
    sha_block(c->h, c->buf);
    c->nbuf = 0;
  }
  for (; n >= 64; n -= 64, p += 64) sha_block(c->h, p);
  memcpy(c->buf, p, n);
  c->nbuf = n;
}

/* Pad (0x80, zeros, 64-bit big-endian bit length) and emit the big-endian digest. */
void nnft_sha256_final(nnft_sha256 *c, unsigned char digest[32]) {
  uint64_t bits = c->bytes * 8;
  unsigned char pad[72] = {0x80};
  size_t npad = (c->nbuf < 56 ? 56 : 120) - c->nbuf;
  for (int i = 0; i < 8; i++) pad[npad + i] = (unsigned char)(bits >> (56 - 8 * i));
  uint64_t keep = c->bytes;
  nnft_sha256_update(c, pad, npad + 8);
  c->bytes = keep;
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 4; j++) digest[4 * i + j] = (unsigned char)(c->h[i] >> (24 - 8 * j));
}

static void to_hex(const unsigned char d[32], char hex[65]) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = digits[d[i] >> 4];
    hex[2 * i + 1] = digits[d[i] & 15];
  }
  hex[64] = '\0';
}

/* One-shot SHA-256 of a buffer, as hex. */
void nnft_sha256_hex(const void *data, size_t n, char hex[65]) {
  nnft_sha256 c;
  unsigned char d[32];
  nnft_sha256_init(&c);
  nnft_sha256_update(&c, data, n);
  nnft_sha256_final(&c, d);
  to_hex(d, hex);
}

/* SHA-256 of a file, read in 64 KiB pieces through a stack buffer. */
nnft_status nnft_io_sha256_file(const char *path, char hex[65], char *why, size_t why_len) {
  FILE *f = fopen(path, "rb");
  if (!f) return io_fail(why, why_len, "read", path, errno);
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(f);
    return io_fail(why, why_len, "read", path, EISDIR);
  }
  nnft_sha256 c;
  nnft_sha256_init(&c);
  unsigned char buf[16384];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, f)) > 0) nnft_sha256_update(&c, buf, got);
  int err = ferror(f) ? (errno ? errno : EIO) : 0;
  fclose(f);
  if (err) return io_fail(why, why_len, "read", path, err);
  unsigned char d[32];
  nnft_sha256_final(&c, d);
  to_hex(d, hex);
  return NNFT_OK;
}

/* ============================ atomic writes ============================ */

typedef struct {
  FILE *f;
  char *tmp; /* nnft_alloc'ed temporary name */
  const char *path;
} atomic_file;

/* Create "<path>.tmp-<pid>-<k>" exclusively (mode 0666 & ~umask) and open it for writing. */
static nnft_status atomic_begin(const char *path, atomic_file *a, char *why, size_t why_len) {
  a->f = NULL;
  a->path = path;
  size_t len = strlen(path), cap;
  if (nnft_size_add(len, 48, &cap)) return NNFT_EOVERFLOW;
  a->tmp = nnft_alloc(cap);
  if (!a->tmp) return NNFT_ENOMEM;
  int fd = -1;
  for (int k = 0; k < 1000 && fd < 0; k++) {
    snprintf(a->tmp, cap, "%s.tmp-%ld-%d", path, (long)getpid(), k);
    fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    int err = errno;
    nnft_free(a->tmp);
    a->tmp = NULL;
    return io_fail(why, why_len, "write", path, err);
  }
  a->f = fdopen(fd, "wb");
  if (!a->f) {
    int err = errno;
    close(fd);
    unlink(a->tmp);
    nnft_free(a->tmp);
    a->tmp = NULL;
    return io_fail(why, why_len, "write", path, err);
  }
  return NNFT_OK;
}

/* Give up: close and remove the temporary file. */
static void atomic_abort(atomic_file *a) {
  if (a->f) fclose(a->f);
  if (a->tmp) unlink(a->tmp);
  nnft_free(a->tmp);
  a->f = NULL;
  a->tmp = NULL;
}

/* Flush, sync, close and rename into place; every step checked. err: a pending write error. */
static nnft_status atomic_commit(atomic_file *a, int err, char *why, size_t why_len) {
  if (!err && fflush(a->f) != 0) err = errno ? errno : EIO;
  if (!err && fsync(fileno(a->f)) != 0 && errno != EINVAL && errno != EROFS) err = errno;
  int rc = fclose(a->f);
  a->f = NULL;
  if (!err && rc != 0) err = errno ? errno : EIO;
  if (!err && rename(a->tmp, a->path) != 0) err = errno;
  if (err) {
    atomic_abort(a);
    return io_fail(why, why_len, "write", a->path, err);
  }
  nnft_free(a->tmp);
  a->tmp = NULL;
  return NNFT_OK;
}

/* Write n bytes to path through a temporary file and rename. */
nnft_status nnft_io_write_atomic(const char *path, const void *data, size_t n, char *why,
                                 size_t why_len) {
  atomic_file a;
  nnft_status s = atomic_begin(path, &a, why, why_len);
  if (s) return s;
  int err = 0;
  errno = 0;
  if (n > 0 && fwrite(data, 1, n, a.f) != n) err = errno ? errno : EIO;
  return atomic_commit(&a, err, why, why_len);
}

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p: create each missing prefix ending at a '/' and then the whole path. */
nnft_status nnft_io_mkdir_p(const char *path, char *why, size_t why_len) {
  size_t len = strlen(path);
  if (len == 0) {
    say(why, why_len, "cannot create directory '': empty path");
    return NNFT_EIO;
  }
  char *p = nnft_alloc(len + 1);
  if (!p) return NNFT_ENOMEM;
  memcpy(p, path, len + 1);
  nnft_status s = NNFT_OK;
  for (size_t i = 1; i <= len; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    char c = p[i];
    p[i] = '\0';
    if (mkdir(p, 0777) != 0) {
      int err = errno;
      if (err != EEXIST || !is_dir(p)) {
        if (err == EEXIST) err = ENOTDIR;
        say(why, why_len, "cannot create directory '%s': %s", p, strerror(err));
        s = NNFT_EIO;
        break;
      }
    }
    p[i] = c;
  }
  nnft_free(p);
  return s;
}

/* ================================= NPY ================================= */

static int host_little_endian(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

static void swap8(double *x, size_t n) {
  for (size_t k = 0; k < n; k++) {
    unsigned char b[8], r[8];
    memcpy(b, &x[k], 8);
    for (int i = 0; i < 8; i++) r[i] = b[7 - i];
    memcpy(&x[k], r, 8);
  }
}

/* Write m column by column as little-endian doubles. */
static int npy_write_data(FILE *f, const nnft_mat *m) {
  int le = host_little_endian();
  double buf[512];
  for (size_t j = 0; j < m->cols; j++) {
    const double *col = m->data + j * m->ld;
    if (le) {
      if (m->rows && fwrite(col, sizeof(double), m->rows, f) != m->rows) return -1;
      continue;
    }
    for (size_t i = 0; i < m->rows; i += 512) {
      size_t n = m->rows - i < 512 ? m->rows - i : 512;
      memcpy(buf, col + i, n * sizeof(double));
      swap8(buf, n);
      if (fwrite(buf, sizeof(double), n, f) != n) return -1;
    }
  }
  return 0;
}

/* NPY 1.0: magic, version, uint16 LE header length, the dict padded with spaces and a final
 * newline so that the data starts at a multiple of 64 bytes. */
nnft_status nnft_io_npy_write(const char *path, const nnft_mat *m, char *why, size_t why_len) {
  if (m->rows && m->cols && !m->data) return NNFT_EDOM;
  char head[256];
  int dict = snprintf(head + 10, sizeof head - 10,
                      "{'descr': '<f8', 'fortran_order': True, 'shape': (%zu, %zu), }",
                      m->rows, m->cols);
  if (dict < 0 || (size_t)dict + 10 + 64 >= sizeof head) return NNFT_EOVERFLOW;
  size_t total = ((size_t)dict + 10 + 1 + 63) / 64 * 64; /* + '\n', rounded up */
  memset(head + 10 + dict, ' ', total - 10 - (size_t)dict);
  head[total - 1] = '\n';
  memcpy(head, "\x93NUMPY\x01\x00", 8);
  head[8] = (char)((total - 10) & 0xff);
  head[9] = (char)((total - 10) >> 8);

  atomic_file a;
  nnft_status s = atomic_begin(path, &a, why, why_len);
  if (s) return s;
  int err = 0;
  errno = 0;
  if (fwrite(head, 1, total, a.f) != total || npy_write_data(a.f, m) != 0)
    err = errno ? errno : EIO;
  return atomic_commit(&a, err, why, why_len);
}

/* ---- the header dict: {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), } ---- */

typedef struct {
  const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int eat(cursor *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* A quoted Python string (no escapes needed for NPY keys and dtypes) into out. */
static int parse_str(cursor *c, char *out, size_t cap) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
  char q = *c->p++;
  size_t n = 0;
  while (c->p < c->end && *c->p != q) {
    if (n + 1 < cap) out[n++] = *c->p;
    c->p++;
  }
  if (c->p >= c->end) return 0;
  c->p++;
  out[n] = '\0';
  return 1;
}

static int parse_word(cursor *c, const char *w) {
  skip_ws(c);
  size_t n = strlen(w);
  if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
    c->p += n;
    return 1;
  }
  return 0;
}

/* (d0, d1, ...) with up to 8 dimensions; returns ndim or -1. */
static int parse_shape(cursor *c, size_t dims[8]) {
  if (!eat(c, '(')) return -1;
  int nd = 0;
  for (;;) {
    skip_ws(c);
    if (eat(c, ')')) return nd;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return -1;
    size_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
      size_t d = (size_t)(*c->p - '0');
      if (v > (SIZE_MAX - d) / 10) return -1;
      v = v * 10 + d;
      c->p++;
    }
    if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 longs */
    if (nd == 8) return -1;
    dims[nd++] = v;
    if (!eat(c, ',')) return eat(c, ')') ? nd : -1;
  }
}

static uint32_t le32(const unsigned char *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

#define NPY_MAX_HEADER (1u << 20)

/* Parse the header of the open file f (positioned at 0) and check the file's size. */
static nnft_status npy_parse(FILE *f, const char *path, nnft_npy_header *h, char *why,
                             size_t why_len) {
  unsigned char pre[12];
  size_t got = fread(pre, 1, 10, f);
  if (ferror(f)) return io_fail(why, why_len, "read", path, errno ? errno : EIO);
  if (got < 6 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    say(why, why_len, "'%s' is not an NPY file (it does not start with \\x93NUMPY)", path);
    return NNFT_EFORMAT;
  }
  if (got < 10) {
    say(why, why_len, "'%s' is truncated inside the NPY preamble", path);
    return NNFT_EFORMAT;
  }
  unsigned major = pre[6], minor = pre[7];
  size_t hlen, pre_len;
  if (major == 1) {
    hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    pre_len = 10;
  } else if (major == 2 || major == 3) {
    if (fread(pre + 10, 1, 2, f) != 2) {
      say(why, why_len, "'%s' is truncated inside the NPY preamble", path);
      return NNFT_EFORMAT;
    }
    hlen = le32(pre + 8);
    pre_len = 12;
  } else {
    say(why, why_len, "'%s': unsupported NPY format version %u.%u (nnft reads 1.x, 2.x, 3.x)",
        path, major, minor);
    return NNFT_EFORMAT;
  }
  if (hlen > NPY_MAX_HEADER) {
    say(why, why_len, "'%s': NPY header length %zu is implausible (corrupt file?)", path, hlen);
    return NNFT_EFORMAT;
  }
  char *text = nnft_alloc(hlen + 1);
  if (!text) return NNFT_ENOMEM;
  nnft_status s = NNFT_OK;
  if (fread(text, 1, hlen, f) != hlen) {
    nnft_free(text);
    if (ferror(f)) return io_fail(why, why_len, "read", path, errno ? errno : EIO);
    say(why, why_len, "'%s' is truncated inside the NPY header", path);
    return NNFT_EFORMAT;
  }
  text[hlen] = '\0';

  cursor c = {text, text + hlen};
  char key[32], descr[32] = "";
  int have_descr = 0, have_order = 0, have_shape = 0, nd = -1;
  size_t dims[8];
  if (!eat(&c, '{')) goto bad;
  for (;;) {
    if (eat(&c, '}')) break;
    if (!parse_str(&c, key, sizeof key) || !eat(&c, ':')) goto bad;
    if (strcmp(key, "descr") == 0) {
      if (!parse_str(&c, descr, sizeof descr)) {
        skip_ws(&c);
        say(why, why_len, "'%s': structured dtypes are not supported (nnft reads float64 '<f8')",
            path);
        nnft_free(text);
        return NNFT_EFORMAT;
      }
      have_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (parse_word(&c, "True")) h->fortran_order = 1;
      else if (parse_word(&c, "False")) h->fortran_order = 0;
      else goto bad;
      have_order = 1;
    } else if (strcmp(key, "shape") == 0) {
      nd = parse_shape(&c, dims);
      if (nd < 0) goto bad;
      have_shape = 1;
    } else {
      goto bad;
    }
    if (!eat(&c, ',')) {
      if (!eat(&c, '}')) goto bad;
      break;
    }
  }
  nnft_free(text);
  text = NULL;
  if (!have_descr || !have_order || !have_shape) {
    say(why, why_len, "'%s': NPY header lacks %s", path,
        !have_descr ? "'descr'" : !have_order ? "'fortran_order'" : "'shape'");
    return NNFT_EFORMAT;
  }
  if (strcmp(descr, "<f8") != 0 && !(strcmp(descr, "=f8") == 0 && host_little_endian())) {
    say(why, why_len, "'%s': dtype '%s' is not float64 little-endian ('<f8'); convert with "
        "numpy: a.astype('<f8')", path, descr);
    return NNFT_EFORMAT;
  }
  if (nd > 2) {
    say(why, why_len, "'%s': array has %d dimensions; nnft reads 0-, 1- or 2-dimensional arrays",
        path, nd);
    return NNFT_EFORMAT;
  }
  h->ndim = nd;
  h->rows = nd >= 1 ? dims[0] : 1;
  h->cols = nd == 2 ? dims[1] : 1;
  h->data_offset = pre_len + hlen;

  size_t count, bytes, want;
  if (nnft_size_mul(h->rows, h->cols, &count) || nnft_size_mul(count, 8, &bytes) ||
      nnft_size_add(bytes, h->data_offset, &want)) {
    say(why, why_len, "'%s': shape %zu x %zu is too large", path, h->rows, h->cols);
    return NNFT_EFORMAT;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0) return io_fail(why, why_len, "read", path, errno);
  size_t have = (size_t)st.st_size;
  if (have < want) {
    say(why, why_len, "'%s' is truncated: shape %zu x %zu needs %zu bytes of data, the file has "
        "%zu", path, h->rows, h->cols, bytes, have - h->data_offset);
    return NNFT_EFORMAT;
  }
  if (have > want) {
    say(why, why_len, "'%s' has %zu unexpected bytes after the data of a %zu x %zu array "
        "(corrupt file?)", path, have - want, h->rows, h->cols);
    return NNFT_EFORMAT;
  }
  return s;

bad:
  nnft_free(text);
  say(why, why_len, "'%s': cannot parse the NPY header dictionary", path);
  return NNFT_EFORMAT;
}

static FILE *open_regular(const char *path, char *why, size_t why_len, nnft_status *s) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    *s = io_fail(why, why_len, "read", path, errno);
    return NULL;
  }
  struct stat st;
  int err = fstat(fileno(f), &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR
                                                  : !S_ISREG(st.st_mode) ? EINVAL : 0;
  if (err) {
    fclose(f);
    *s = io_fail(why, why_len, "read", path, err);
    return NULL;
  }
  *s = NNFT_OK;
  return f;
}

/* Open, parse, close. */
nnft_status nnft_io_npy_read_header(const char *path, nnft_npy_header *h, char *why,
                                    size_t why_len) {
  nnft_status s;
  FILE *f = open_regular(path, why, why_len, &s);
  if (!f) return s;
  s = npy_parse(f, path, h, why, why_len);
  fclose(f);
  return s;
}

/* Read the data into out (shape checked against the header read again). */
nnft_status nnft_io_npy_read(const char *path, nnft_mat *out, char *why, size_t why_len) {
  nnft_status s;
  FILE *f = open_regular(path, why, why_len, &s);
  if (!f) return s;
  nnft_npy_header h;
  s = npy_parse(f, path, &h, why, why_len);
  if (s) goto done;
  if (h.rows != out->rows || h.cols != out->cols) {
    say(why, why_len, "'%s' changed while being read", path);
    s = NNFT_EFORMAT;
    goto done;
  }
  int le = host_little_endian();
  if (h.fortran_order || h.cols == 1 || h.rows == 1) {
    /* column-major on disk (a vector is the same either way); rows == 1 C order is one row,
     * stored as consecutive columns: also column-major. */
    for (size_t j = 0; j < h.cols; j++) {
      double *col = out->data + j * out->ld;
      if (h.rows && fread(col, sizeof(double), h.rows, f) != h.rows) goto short_read;
      if (!le) swap8(col, h.rows);
    }
  } else {
    double buf[512];
    size_t total = h.rows * h.cols, k = 0;
    while (k < total) {
      size_t n = total - k < 512 ? total - k : 512;
      if (fread(buf, sizeof(double), n, f) != n) goto short_read;
      if (!le) swap8(buf, n);
      for (size_t t = 0; t < n; t++, k++) NNFT_AT(out, k / h.cols, k % h.cols) = buf[t];
    }
  }
  goto done;
short_read:
  if (ferror(f)) s = io_fail(why, why_len, "read", path, errno ? errno : EIO);
  else {
    say(why, why_len, "'%s' is truncated (changed while being read?)", path);
    s = NNFT_EFORMAT;
  }
done:
  fclose(f);
  return s;
}

/* ============================ numbers as text ============================ */

size_t nnft_io_format_double(double x, char buf[32]) {
  if (isnan(x)) return (size_t)snprintf(buf, 32, "nan");
  if (isinf(x)) return (size_t)snprintf(buf, 32, x > 0 ? "inf" : "-inf");
  int n = 0;
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(buf, 32, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) break;
  }
  return (size_t)n;
}
