/* nnft_io: SHA-256 against FIPS 180-4 / NIST vectors, NPY round trips and malformed files,
 * atomic writes that fail half-way, mkdir -p, shortest round-trip number text. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nnft_alloc.h"
#include "nnft_io.h"
#include "nnft_mat.h"
#include "test_util.h"

static char dir[64];
static char path_buf[256];

static const char *tp(const char *name) {
  snprintf(path_buf, sizeof path_buf, "%s/%s", dir, name);
  return path_buf;
}

static void write_raw(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(data, 1, n, f);
  fclose(f);
}

static size_t read_raw(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

/* Number of directory entries whose name contains ".tmp-" (leftover temporary files). */
static int count_tmp(void) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strstr(e->d_name, ".tmp-")) n++;
  closedir(d);
  return n;
}

static void test_sha256(void) {
  char hex[65];
  nnft_sha256_hex("", 0, hex);
  CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
  nnft_sha256_hex("abc", 3, hex);
  CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
  const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  nnft_sha256_hex(m448, strlen(m448), hex);
  CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
  const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                     "klmnopqrlmnopqrsmnopqrstnopqrstu";
  nnft_sha256_hex(m896, strlen(m896), hex);
  CHECK(strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1") == 0);

  /* one million 'a', fed in uneven pieces */
  static char a[1000000];
  memset(a, 'a', sizeof a);
  nnft_sha256 c;
  nnft_sha256_init(&c);
  size_t off = 0, step = 1;
  while (off < sizeof a) {
    size_t n = step < sizeof a - off ? step : sizeof a - off;
    nnft_sha256_update(&c, a + off, n);
    off += n;
    step = step * 3 + 1;
    if (step > 70000) step = 63;
  }
  unsigned char d[32];
  nnft_sha256_final(&c, d);
  static const unsigned char want[32] = {
      0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7, 0xe2, 0x84, 0xd7, 0x3e, 0x67,
      0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97, 0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
  CHECK(memcmp(d, want, 32) == 0);

  /* lengths around the padding boundary (55, 56, 63, 64 bytes) agree between one-shot and
   * byte-at-a-time feeding */
  for (size_t len = 54; len <= 66; len++) {
    unsigned char one[32], two[32];
    nnft_sha256_init(&c);
    nnft_sha256_update(&c, a, len);
    nnft_sha256_final(&c, one);
    nnft_sha256_init(&c);
    for (size_t i = 0; i < len; i++) nnft_sha256_update(&c, a + i, 1);
    nnft_sha256_final(&c, two);
    CHECK(memcmp(one, two, 32) == 0);
  }
  /* 64 'a' (two padding blocks are needed at 56..63; 64 is a whole block) */
  char hex64[65];
  nnft_sha256_hex(a, 64, hex64);
  CHECK(strcmp(hex64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb") == 0);

  /* a file */
  write_raw(tp("abc.txt"), "abc", 3);
  CHECK_STATUS(nnft_io_sha256_file(tp("abc.txt"), hex, NULL, 0), NNFT_OK);
  CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
  char why[512] = "";
  CHECK_STATUS(nnft_io_sha256_file(tp("nope.txt"), hex, why, sizeof why), NNFT_EIO);
  CHECK(strstr(why, "nope.txt") && strstr(why, "No such file"));
  CHECK_STATUS(nnft_io_sha256_file(dir, hex, why, sizeof why), NNFT_EIO);
}

static void test_npy_roundtrip(void) {
  nnft_mat big, v, back;
  CHECK_STATUS(nnft_mat_alloc(5, 4, &big), NNFT_OK);
  for (size_t j = 0; j < 4; j++)
    for (size_t i = 0; i < 5; i++) NNFT_AT(&big, i, j) = (double)i + 10.0 * (double)j + 0.1;
  NNFT_AT(&big, 1, 1) = NAN;
  NNFT_AT(&big, 2, 1) = -INFINITY;
  CHECK_STATUS(nnft_mat_view(&big, 1, 1, 3, 2, &v), NNFT_OK); /* ld 5 > rows 3 */
  char why[512] = "";
  CHECK_STATUS(nnft_io_npy_write(tp("v.npy"), &v, why, sizeof why), NNFT_OK);

  char raw[4096];
  size_t n = read_raw(tp("v.npy"), raw, sizeof raw);
  CHECK(n == 128 + 6 * 8); /* header padded to 64 bytes; 6 doubles */
  CHECK(memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0);
  CHECK(raw[127] == '\n');
  CHECK(strstr(raw + 10, "'fortran_order': True") != NULL);
  CHECK(strstr(raw + 10, "'shape': (3, 2)") != NULL);

  nnft_npy_header h;
  CHECK_STATUS(nnft_io_npy_read_header(tp("v.npy"), &h, why, sizeof why), NNFT_OK);
  CHECK(h.rows == 3 && h.cols == 2 && h.ndim == 2 && h.fortran_order == 1);
  CHECK(h.data_offset == 128);
  CHECK_STATUS(nnft_mat_alloc(3, 2, &back), NNFT_OK);
  CHECK_STATUS(nnft_io_npy_read(tp("v.npy"), &back, why, sizeof why), NNFT_OK);
  for (size_t j = 0; j < 2; j++)
    for (size_t i = 0; i < 3; i++) {
      double a = NNFT_AT(&v, i, j), b = NNFT_AT(&back, i, j);
      CHECK((isnan(a) && isnan(b)) || memcmp(&a, &b, 8) == 0);
    }
  nnft_mat wrong;
  CHECK_STATUS(nnft_mat_alloc(2, 3, &wrong), NNFT_OK);
  CHECK_STATUS(nnft_io_npy_read(tp("v.npy"), &wrong, why, sizeof why), NNFT_EFORMAT);
  nnft_mat_free(&wrong);

  /* an empty matrix */
  nnft_mat e;
  CHECK_STATUS(nnft_mat_alloc(0, 3, &e), NNFT_OK);
  CHECK_STATUS(nnft_io_npy_write(tp("e.npy"), &e, why, sizeof why), NNFT_OK);
  CHECK_STATUS(nnft_io_npy_read_header(tp("e.npy"), &h, why, sizeof why), NNFT_OK);
  CHECK(h.rows == 0 && h.cols == 3);
  nnft_mat_free(&e);

  /* allocation failure: the temporary name cannot be allocated */
  test_alloc_fail_after(0);
  CHECK_STATUS(nnft_io_npy_write(tp("v2.npy"), &v, why, sizeof why), NNFT_ENOMEM);
  CHECK_STATUS(nnft_io_npy_read_header(tp("v.npy"), &h, why, sizeof why), NNFT_ENOMEM);
  test_alloc_fail_after(-1);
  CHECK(count_tmp() == 0);

  nnft_mat_free(&back);
  nnft_mat_free(&big);
}

/* Build an NPY file by hand: version major, header dict, n data doubles. */
static void make_npy(const char *name, int major, const char *dict, const double *data,
                     size_t n) {
  char buf[8192];
  size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
  size_t total = (pre + dl + 1 + 63) / 64 * 64;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (char)major;
  buf[7] = 0;
  size_t hlen = total - pre;
  if (major == 1) {
    buf[8] = (char)(hlen & 255);
    buf[9] = (char)(hlen >> 8);
  } else {
    buf[8] = (char)(hlen & 255);
    buf[9] = (char)(hlen >> 8);
    buf[10] = buf[11] = 0;
  }
  memcpy(buf + pre, dict, dl);
  memset(buf + pre + dl, ' ', total - pre - dl);
  buf[total - 1] = '\n';
  memcpy(buf + total, data, n * 8);
  write_raw(tp(name), buf, total + n * 8);
}

static void test_npy_c_order_and_errors(void) {
  double d[6] = {1, 2, 3, 4, 5, 6}; /* C order 2 x 3: rows (1 2 3), (4 5 6) */
  char why[512] = "";
  nnft_npy_header h;
  nnft_mat m;
  make_npy("c.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", d, 6);
  CHECK_STATUS(nnft_io_npy_read_header(tp("c.npy"), &h, why, sizeof why), NNFT_OK);
  CHECK(h.rows == 2 && h.cols == 3 && h.fortran_order == 0);
  CHECK_STATUS(nnft_mat_alloc(2, 3, &m), NNFT_OK);
  CHECK_STATUS(nnft_io_npy_read(tp("c.npy"), &m, why, sizeof why), NNFT_OK);
  CHECK(NNFT_AT(&m, 0, 0) == 1 && NNFT_AT(&m, 0, 2) == 3 && NNFT_AT(&m, 1, 0) == 4 &&
        NNFT_AT(&m, 1, 2) == 6);
  nnft_mat_free(&m);

  /* version 2.0, 1-D and 0-D shapes, double-quoted keys */
  make_npy("v2.npy", 2, "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (4,)}", d, 4);
  CHECK_STATUS(nnft_io_npy_read_header(tp("v2.npy"), &h, why, sizeof why), NNFT_OK);
  CHECK(h.rows == 4 && h.cols == 1 && h.ndim == 1);
  make_npy("s.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", d, 1);
  CHECK_STATUS(nnft_io_npy_read_header(tp("s.npy"), &h, why, sizeof why), NNFT_OK);
  CHECK(h.rows == 1 && h.cols == 1 && h.ndim == 0);

  /* wrong dtype, 3-D, truncated, trailing bytes, bad magic, bad version, garbage dict */
  make_npy("f4.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", d, 1);
  CHECK_STATUS(nnft_io_npy_read_header(tp("f4.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  CHECK(strstr(why, "'<f4'") && strstr(why, "float64"));
  make_npy("be.npy", 1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", d, 2);
  CHECK_STATUS(nnft_io_npy_read_header(tp("be.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  make_npy("3d.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2, 3), }", d, 6);
  CHECK_STATUS(nnft_io_npy_read_header(tp("3d.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  CHECK(strstr(why, "3 dimensions") != NULL);
  make_npy("tr.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", d, 5);
  CHECK_STATUS(nnft_io_npy_read_header(tp("tr.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  CHECK(strstr(why, "truncated") != NULL);
  make_npy("big.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", d, 1);
  CHECK_STATUS(nnft_io_npy_read_header(tp("big.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  make_npy("tl.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", d, 3);
  CHECK_STATUS(nnft_io_npy_read_header(tp("tl.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  CHECK(strstr(why, "unexpected bytes") != NULL);
  make_npy("gd.npy", 1, "{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2,), }", d, 2);
  CHECK_STATUS(nnft_io_npy_read_header(tp("gd.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  make_npy("nk.npy", 1, "{'descr': '<f8', 'shape': (2,), }", d, 2);
  CHECK_STATUS(nnft_io_npy_read_header(tp("nk.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  CHECK(strstr(why, "fortran_order") != NULL);
  make_npy("v9.npy", 9, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", d, 2);
  CHECK_STATUS(nnft_io_npy_read_header(tp("v9.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  CHECK(strstr(why, "version") != NULL);
  write_raw(tp("txt.npy"), "hello, world\n", 13);
  CHECK_STATUS(nnft_io_npy_read_header(tp("txt.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  CHECK(strstr(why, "not an NPY file") != NULL);
  write_raw(tp("short.npy"), "\x93NUMPY\x01", 7);
  CHECK_STATUS(nnft_io_npy_read_header(tp("short.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  write_raw(tp("hdr.npy"), "\x93NUMPY\x01\x00\x40\x00{'descr'", 18);
  CHECK_STATUS(nnft_io_npy_read_header(tp("hdr.npy"), &h, why, sizeof why), NNFT_EFORMAT);
  CHECK_STATUS(nnft_io_npy_read_header(tp("absent.npy"), &h, why, sizeof why), NNFT_EIO);
  CHECK(strstr(why, "absent.npy") && strstr(why, "No such file"));
  CHECK_STATUS(nnft_io_npy_read_header(dir, &h, why, sizeof why), NNFT_EIO);
}

static void test_atomic(void) {
  char why[512] = "", buf[4096];
  const char *p = tp("old.txt");
  CHECK_STATUS(nnft_io_write_atomic(p, "old contents\n", 13, why, sizeof why), NNFT_OK);
  CHECK(read_raw(tp("old.txt"), buf, sizeof buf) == 13 && memcmp(buf, "old contents\n", 13) == 0);
  CHECK_STATUS(nnft_io_write_atomic(tp("old.txt"), "new\n", 4, why, sizeof why), NNFT_OK);
  CHECK(read_raw(tp("old.txt"), buf, sizeof buf) == 4 && memcmp(buf, "new\n", 4) == 0);

  /* the target is a directory: rename fails, nothing is left behind */
  mkdir(tp("adir"), 0777);
  write_raw(tp("adir/keep"), "k", 1);
  CHECK_STATUS(nnft_io_write_atomic(tp("adir"), "x", 1, why, sizeof why), NNFT_EIO);
  CHECK(strstr(why, "adir") != NULL && strstr(why, "cannot write") != NULL);
  CHECK(count_tmp() == 0);

  /* the directory does not exist */
  CHECK_STATUS(nnft_io_write_atomic(tp("no/such/dir/f.txt"), "x", 1, why, sizeof why), NNFT_EIO);
  CHECK(strstr(why, "No such file or directory") != NULL);

  /* a write that fails half-way (file size limit: EFBIG) leaves the old file intact */
  struct rlimit old_lim, lim;
  getrlimit(RLIMIT_FSIZE, &old_lim);
  signal(SIGXFSZ, SIG_IGN);
  lim = old_lim;
  lim.rlim_cur = 1000;
  CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  static char payload[100000];
  memset(payload, 'z', sizeof payload);
  CHECK_STATUS(nnft_io_write_atomic(tp("old.txt"), payload, sizeof payload, why, sizeof why),
               NNFT_EIO);
  CHECK(strstr(why, "old.txt") != NULL && strstr(why, "too large") != NULL);
  nnft_mat m;
  nnft_mat_alloc(100, 100, &m);
  CHECK_STATUS(nnft_io_npy_write(tp("old.txt"), &m, why, sizeof why), NNFT_EIO);
  nnft_mat_free(&m);
  setrlimit(RLIMIT_FSIZE, &old_lim);
  signal(SIGXFSZ, SIG_DFL);
  CHECK(read_raw(tp("old.txt"), buf, sizeof buf) == 4 && memcmp(buf, "new\n", 4) == 0);
  CHECK(count_tmp() == 0);

  /* allocation failure: nothing written */
  test_alloc_fail_after(0);
  CHECK_STATUS(nnft_io_write_atomic(tp("old.txt"), "zz", 2, why, sizeof why), NNFT_ENOMEM);
  test_alloc_fail_after(-1);
  CHECK(read_raw(tp("old.txt"), buf, sizeof buf) == 4);
}

static void test_mkdir(void) {
  char why[512] = "";
  struct stat st;
  CHECK_STATUS(nnft_io_mkdir_p(tp("a/b/c"), why, sizeof why), NNFT_OK);
  CHECK(stat(tp("a/b/c"), &st) == 0 && S_ISDIR(st.st_mode));
  CHECK_STATUS(nnft_io_mkdir_p(tp("a/b/c/"), why, sizeof why), NNFT_OK); /* exists: fine */
  CHECK_STATUS(nnft_io_mkdir_p(tp("a//b"), why, sizeof why), NNFT_OK);
  write_raw(tp("a/file"), "f", 1);
  CHECK_STATUS(nnft_io_mkdir_p(tp("a/file/sub"), why, sizeof why), NNFT_EIO);
  CHECK(strstr(why, "a/file") && strstr(why, "Not a directory"));
  CHECK_STATUS(nnft_io_mkdir_p("", why, sizeof why), NNFT_EIO);
  test_alloc_fail_after(0);
  CHECK_STATUS(nnft_io_mkdir_p(tp("x/y"), why, sizeof why), NNFT_ENOMEM);
  test_alloc_fail_after(-1);
}

static void test_format(void) {
  char b[32];
  nnft_io_format_double(0.1, b);
  CHECK(strcmp(b, "0.1") == 0);
  nnft_io_format_double(3.0, b);
  CHECK(strcmp(b, "3") == 0);
  nnft_io_format_double(1e300, b);
  CHECK(strcmp(b, "1e+300") == 0);
  nnft_io_format_double(NAN, b);
  CHECK(strcmp(b, "nan") == 0);
  nnft_io_format_double(-INFINITY, b);
  CHECK(strcmp(b, "-inf") == 0);
  double xs[] = {1.0 / 3.0, 2.0 / 3.0, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, -123.456e-7,
                 M_PI};
  for (size_t k = 0; k < sizeof xs / sizeof xs[0]; k++) {
    nnft_io_format_double(xs[k], b);
    CHECK(strtod(b, NULL) == xs[k]);
  }
  nnft_io_format_double(0.1 + 0.2, b);
  CHECK(strcmp(b, "0.30000000000000004") == 0);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/nnft-test-io-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_sha256();
  test_npy_roundtrip();
  test_npy_c_order_and_errors();
  test_atomic();
  test_mkdir();
  test_format();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return test_report("test_io");
}
