/* na-state: the real guest's state endpoint (TCP 7001), one process.
 *
 * The protocol, the state directory (/tmp/st), its canonical text
 * serialisation, the mkdir lock and the freeze-at-export rule are
 * documented in guest.py (the module docstring is the reference); this is
 * the endpoint side of them. It replaces a busybox-shell script run by
 * `nc -ll -e` per connection: under QEMU TCG every process spawn costs
 * milliseconds, and that script spawned about twenty (sh, sed, awk, ls,
 * sort, sha256sum, dd, wc...). Here a request costs no spawn at all.
 *
 * Built by image.py with `gcc -static` when the guest image is built.
 * Requests are served one at a time (each read and write with a 10 s socket
 * timeout), so exports and imports never overlap. A connection stays open
 * after a request until the client closes it (at most MAX_CONNS are kept;
 * a new one beyond that closes the oldest): the replica agent keeps one
 * across pauses, so an import into a just-resumed copy skips the TCP
 * handshake into a TCG guest. One request at a time per connection: the
 * client waits for a reply before it sends the next request.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* the state's files, under the root directory (argv[2], default /tmp) */
static char ST[256], LOCK[256], FROZEN[256], IMPORTS[256], NEWDIR[256],
  OLDDIR[256], ST_EPOCH[256], ST_LOG[256], NEW_EPOCH[256];
static void paths(const char *root) {
  snprintf(ST, sizeof ST, "%s/st", root);
  snprintf(LOCK, sizeof LOCK, "%s/st.lock", root);
  snprintf(FROZEN, sizeof FROZEN, "%s/st.frozen", root);
  snprintf(IMPORTS, sizeof IMPORTS, "%s/st.imports", root);
  snprintf(NEWDIR, sizeof NEWDIR, "%s/na-x.d", root);
  snprintf(OLDDIR, sizeof OLDDIR, "%s/na-x.old", root);
  snprintf(ST_EPOCH, sizeof ST_EPOCH, "%s/st/epoch", root);
  snprintf(ST_LOG, sizeof ST_LOG, "%s/st/log", root);
  snprintf(NEW_EPOCH, sizeof NEW_EPOCH, "%s/na-x.d/epoch", root);
}
#define MAX_LINE 65536
#define MAX_IMPORT (32L << 20)
#define IO_TIMEOUT_S 10

/* ------------------------------------------------------------ SHA-256 */
typedef struct { uint32_t h[8]; uint64_t n; unsigned char b[64]; } sha_t;
static const uint32_t K[64] = {
 0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,
 0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,
 0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,
 0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,
 0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,
 0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,
 0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,
 0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
 0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,
 0xc67178f2};
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
static void sha_block(sha_t *s, const unsigned char *p) {
  uint32_t w[64], a, b, c, d, e, f, g, h, t1, t2;
  int i;
  for (i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4*i] << 24 | (uint32_t)p[4*i+1] << 16 |
           (uint32_t)p[4*i+2] << 8 | p[4*i+3];
  for (; i < 64; i++)
    w[i] = (ROR(w[i-2], 17) ^ ROR(w[i-2], 19) ^ (w[i-2] >> 10)) + w[i-7] +
           (ROR(w[i-15], 7) ^ ROR(w[i-15], 18) ^ (w[i-15] >> 3)) + w[i-16];
  a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
  e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
  for (i = 0; i < 64; i++) {
    t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) +
         K[i] + w[i];
    t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
  s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}
/* hex SHA-256 of len bytes at p into out[65] */
static void sha256_hex(const char *p, size_t len, char *out) {
  static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
    0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  sha_t s;
  size_t i, r;
  unsigned char tail[128];
  memcpy(s.h, H0, sizeof H0);
  for (i = 0; i + 64 <= len; i += 64) sha_block(&s, (const unsigned char *)p + i);
  r = len - i;
  memset(tail, 0, sizeof tail);
  memcpy(tail, p + i, r);
  tail[r] = 0x80;
  size_t tl = r + 9 <= 64 ? 64 : 128;
  uint64_t bits = (uint64_t)len * 8;
  for (i = 0; i < 8; i++) tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
  sha_block(&s, tail);
  if (tl == 128) sha_block(&s, tail + 64);
  for (i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", s.h[i]);
}

/* ------------------------------------------------------------ buffers */
typedef struct { char *p; size_t n, cap; } buf_t;
static void bput(buf_t *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) { perror("na-state: realloc"); exit(1); }
    b->p = q; b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}
static void bputs(buf_t *b, const char *s) { bput(b, s, strlen(s)); }
static void bprintf(buf_t *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  bput(b, tmp, n < (int)sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
/* a JSON string literal (quotes, backslashes and controls escaped) */
static void bjson(buf_t *b, const char *s) {
  bputs(b, "\"");
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') { char e[2] = {'\\', *s}; bput(b, e, 2); }
    else if ((unsigned char)*s < 0x20) bprintf(b, "\\u%04x", *s);
    else bput(b, s, 1);
  }
  bputs(b, "\"");
}

/* whole file into b (appended); -1 if it cannot be read */
static int slurp(const char *path, buf_t *b) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  char tmp[65536];
  ssize_t r;
  while ((r = read(fd, tmp, sizeof tmp)) > 0) bput(b, tmp, r);
  close(fd);
  return r < 0 ? -1 : 0;
}
/* the first line of a file, as ash's `read v` gives it (blanks trimmed) */
static void first_line(const char *path, char *out, size_t cap, int trim) {
  buf_t b = {0};
  out[0] = 0;
  if (slurp(path, &b) < 0 || !b.p) { free(b.p); return; }
  char *s = b.p, *e = strchr(s, '\n');
  if (!e) e = s + b.n;
  if (trim) {
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
  }
  size_t n = (size_t)(e - s) < cap - 1 ? (size_t)(e - s) : cap - 1;
  memcpy(out, s, n);
  out[n] = 0;
  free(b.p);
}
static int write_file(const char *path, const char *s, size_t n, int append) {
  int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
  if (fd < 0) return -1;
  ssize_t w = write(fd, s, n);
  close(fd);
  return w == (ssize_t)n ? 0 : -1;
}
static void rmtree(const char *path) {
  DIR *d = opendir(path);
  if (!d) { unlink(path); return; }
  struct dirent *e;
  char p[4096];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    rmtree(p);
  }
  closedir(d);
  rmdir(path);
}

/* ------------------------------------------------------------ state */
static void lock(void) {
  while (mkdir(LOCK, 0755) < 0) usleep(2000);
}
static void unlock(void) { rmdir(LOCK); }

static int cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the canonical serialisation of the state in directory dir:
 *   netaware-guest-state 1 / epoch E / counter N / total T /
 *   client <c> <last> <count> <dups> <gaps>  (sorted by client, bytewise) /
 *   log <c> <n>                              (in the order applied)       */
static void dump(const char *dir, buf_t *out) {
  static const char *keys[] = {"epoch", "counter", "total"};
  char path[4096], v[256];
  bputs(out, "netaware-guest-state 1\n");
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, keys[i]);
    first_line(path, v, sizeof v, 1);
    bprintf(out, "%s %s\n", keys[i], v);
  }
  snprintf(path, sizeof path, "%s/c", dir);
  DIR *d = opendir(path);
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      names = realloc(names, cap * sizeof *names);
      if (!names) { perror("na-state: realloc"); exit(1); }
    }
    names[n++] = strdup(e->d_name);
  }
  if (d) closedir(d);
  qsort(names, n, sizeof *names, cmp);
  for (size_t i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/c/%s", dir, names[i]);
    first_line(path, v, sizeof v, 0);
    bprintf(out, "client %s %s\n", names[i], v);
    free(names[i]);
  }
  free(names);
  snprintf(path, sizeof path, "%s/log", dir);
  buf_t log = {0};
  slurp(path, &log);
  for (size_t i = 0; i < log.n;) {
    char *nl = memchr(log.p + i, '\n', log.n - i);
    size_t len = nl ? (size_t)(nl - log.p) - i : log.n - i;
    bputs(out, "log ");
    bput(out, log.p + i, len);
    bputs(out, "\n");
    i += len + 1;
  }
  free(log.p);
}

static int is_num(const char *s) {
  if (!*s) return 0;
  for (; *s; s++) if (*s < '0' || *s > '9') return 0;
  return 1;
}
static int is_name(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
          (*s >= '0' && *s <= '9') || *s == '_' || *s == '-')) return 0;
  return 1;
}

/* parse serialisation p[0..len) into a new state directory dir; 0, or -1
 * with the reason in err */
static int load(const char *p, size_t len, const char *dir, char *err,
                size_t errcap) {
  char path[4096], line[4096], *f[8];
  int seen[3] = {0, 0, 0};
  static const char *keys[] = {"epoch", "counter", "total"};
  size_t nr = 0;
  buf_t log = {0};
  rmtree(dir);
  snprintf(path, sizeof path, "%s/c", dir);
  if (mkdir(dir, 0755) < 0 || mkdir(path, 0755) < 0) {
    snprintf(err, errcap, "cannot create %s: %s", dir, strerror(errno));
    return -1;
  }
  for (size_t i = 0; i < len;) {
    const char *nl = memchr(p + i, '\n', len - i);
    size_t l = nl ? (size_t)(nl - p) - i : len - i;
    nr++;
    if (l >= sizeof line || memchr(p + i, 0, l)) goto bad_line;
    memcpy(line, p + i, l);
    line[l] = 0;
    i += l + 1;
    if (nr == 1) {
      if (strcmp(line, "netaware-guest-state 1")) {
        snprintf(err, errcap, "bad header (line 1)");
        goto fail;
      }
      continue;
    }
    int nf = 0;  /* fields as awk splits them: runs of blanks */
    for (char *s = strtok(line, " \t"); s; s = strtok(NULL, " \t")) {
      if (nf == 8) goto bad_line;
      f[nf++] = s;
    }
    if (nf == 2 && is_num(f[1])) {
      int k;
      for (k = 0; k < 3 && strcmp(f[0], keys[k]); k++) ;
      if (k < 3) {
        if (seen[k]++) {
          snprintf(err, errcap, "twice %s (line %zu)", keys[k], nr);
          goto fail;
        }
        snprintf(path, sizeof path, "%s/%s", dir, keys[k]);
        char v[512];
        int n = snprintf(v, sizeof v, "%s\n", f[1]);
        if (write_file(path, v, n, 0) < 0) goto io;
        continue;
      }
    }
    if (nf == 6 && !strcmp(f[0], "client") && is_name(f[1]) && is_num(f[2])
        && is_num(f[3]) && is_num(f[4]) && is_num(f[5])) {
      char v[4096];
      int n = snprintf(v, sizeof v, "%s %s %s %s\n", f[2], f[3], f[4], f[5]);
      snprintf(path, sizeof path, "%s/c/%s", dir, f[1]);
      if (write_file(path, v, n, 0) < 0) goto io;
      continue;
    }
    if (nf == 3 && !strcmp(f[0], "log") && is_name(f[1]) && is_num(f[2])) {
      bprintf(&log, "%s %s\n", f[1], f[2]);
      continue;
    }
  bad_line:
    snprintf(err, errcap, "bad line (line %zu)", nr);
    goto fail;
  }
  if (!seen[0] || !seen[1] || !seen[2]) {
    snprintf(err, errcap, "epoch, counter or total missing");
    goto fail;
  }
  snprintf(path, sizeof path, "%s/log", dir);
  if (write_file(path, log.p ? log.p : "", log.n, 0) < 0) goto io;
  free(log.p);
  return 0;
io:
  snprintf(err, errcap, "cannot write %.200s: %s", path, strerror(errno));
fail:
  free(log.p);
  rmtree(dir);
  return -1;
}

/* ------------------------------------------------------------ protocol */
static struct timespec t_req;  /* when the request line was complete */
/* microseconds since t_req: the endpoint's own share of a request */
static long server_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t_req.tv_sec) * 1000000L +
         (t.tv_nsec - t_req.tv_nsec) / 1000;
}
static int sendall(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) { if (w < 0 && errno == EINTR) continue; return -1; }
    p += w; n -= w;
  }
  return 0;
}
static void reply_err(int fd, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  buf_t b = {0};
  bputs(&b, "{\"ok\": false, \"error\": ");
  bjson(&b, msg);
  bputs(&b, "}\n");
  sendall(fd, b.p, b.n);
  free(b.p);
}

/* the value of "key" in a one-line JSON object: a string without escapes
 * (jstr) or an integer (jnum); 0 if absent */
static const char *jval(const char *line, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *s = strstr(line, pat);
  if (!s) return NULL;
  s += strlen(pat);
  while (*s == ' ') s++;
  if (*s++ != ':') return NULL;
  while (*s == ' ') s++;
  return s;
}
static int jstr(const char *line, const char *key, char *out, size_t cap) {
  const char *s = jval(line, key);
  if (!s || *s++ != '"') return 0;
  size_t n = strcspn(s, "\"\\");
  if (s[n] != '"' || n >= cap) return 0;
  memcpy(out, s, n);
  out[n] = 0;
  return 1;
}
static int jnum(const char *line, const char *key, long long *out) {
  const char *s = jval(line, key);
  char *e;
  if (!s || !(*s == '-' || (*s >= '0' && *s <= '9'))) return 0;
  errno = 0;
  *out = strtoll(s, &e, 10);
  return e != s && !errno;
}

static long long file_num(const char *path) {
  char v[64];
  first_line(path, v, sizeof v, 1);
  return strtoll(v, NULL, 10);
}

static void op_export(int fd) {
  buf_t b = {0};
  char h[65], epoch[64];
  lock();
  close(open(FROZEN, O_WRONLY | O_CREAT, 0644));
  dump(ST, &b);
  first_line(ST_EPOCH, epoch, sizeof epoch, 1);
  unlock();
  sha256_hex(b.p, b.n, h);
  char hdr[256];
  int n = snprintf(hdr, sizeof hdr, "{\"ok\": true, \"size\": %zu, \"sha256\": "
                   "\"%s\", \"epoch\": %s, \"frozen\": true, \"server_us\": "
                   "%ld}\n", b.n, h, epoch[0] ? epoch : "0", server_us());
  if (sendall(fd, hdr, n) == 0) sendall(fd, b.p, b.n);
  free(b.p);
}

static void op_import(int fd, const char *line, const char *rest,
                      size_t nrest) {
  long long size, epoch = 0, cur;
  char want[128] = "", h[65], err[512];
  if (!jnum(line, "size", &size) || size < 0)
    return reply_err(fd, "bad request: no size");
  jnum(line, "epoch", &epoch);
  jstr(line, "sha256", want, sizeof want);
  if (size > MAX_IMPORT)
    return reply_err(fd, "import too large: %lld bytes (limit %ld)", size,
                     MAX_IMPORT);
  char *blob = malloc(size + 1);
  if (!blob) return reply_err(fd, "out of memory for %lld bytes", size);
  size_t got = nrest < (size_t)size ? nrest : (size_t)size;
  memcpy(blob, rest, got);
  while (got < (size_t)size) {
    ssize_t r = recv(fd, blob + got, size - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += r;
  }
  if (got != (size_t)size) {
    free(blob);
    return reply_err(fd, "short import: %zu of %lld bytes", got, size);
  }
  if (load(blob, size, NEWDIR, err, sizeof err) < 0) {
    free(blob);
    return reply_err(fd, "bad state blob: %s", err);
  }
  free(blob);
  /* the checksum of what was loaded: the new directory serialised again */
  buf_t b = {0};
  dump(NEWDIR, &b);
  sha256_hex(b.p, b.n, h);
  free(b.p);
  lock();
  cur = file_num(ST_EPOCH);
  if (epoch < cur) {
    unlock();
    rmtree(NEWDIR);
    return reply_err(fd, "stale epoch %lld < %lld", epoch, cur);
  }
  if (strcmp(h, want)) {
    unlock();
    rmtree(NEWDIR);
    return reply_err(fd, "checksum mismatch: loaded state %s, expected %s",
                     h, want);
  }
  char v[64];
  int n = snprintf(v, sizeof v, "%lld\n", epoch);
  rmtree(OLDDIR);
  if (write_file(NEW_EPOCH, v, n, 0) < 0 || rename(ST, OLDDIR) < 0 ||
      rename(NEWDIR, ST) < 0) {
    int e = errno;
    if (access(ST, F_OK) < 0) rename(OLDDIR, ST);  /* put the old one back */
    unlock();
    rmtree(NEWDIR);
    return reply_err(fd, "cannot install the imported state: %s",
                     strerror(e));
  }
  unlink(FROZEN);
  n = snprintf(v, sizeof v, "%lld\n", file_num(IMPORTS) + 1);
  write_file(IMPORTS, v, n, 0);
  unlock();
  char out[160];
  n = snprintf(out, sizeof out, "{\"ok\": true, \"sha256\": \"%s\", "
               "\"server_us\": %ld}\n", h, server_us());
  sendall(fd, out, n);
  rmtree(OLDDIR);
}

static void op_stats(int fd) {
  buf_t b = {0}, o = {0}, cl = {0};
  char h[65];
  lock();
  dump(ST, &b);
  int frozen = access(FROZEN, F_OK) == 0;
  long long imports = file_num(IMPORTS);
  unlock();
  sha256_hex(b.p, b.n, h);
  long long v[3] = {0, 0, 0}, dups = 0, gaps = 0, logn = 0;
  static const char *keys[] = {"epoch", "counter", "total"};
  for (char *s = b.p, *nl; s < b.p + b.n; s = nl + 1) {
    nl = strchr(s, '\n');
    *nl = 0;
    char name[256];
    long long a[4];
    if (!strncmp(s, "log ", 4)) logn++;
    else if (sscanf(s, "client %255s %lld %lld %lld %lld", name, &a[0], &a[1],
                    &a[2], &a[3]) == 5) {
      bprintf(&cl, "%s\"%s\": [%lld, %lld, %lld, %lld]", cl.n ? ", " : "",
              name, a[0], a[1], a[2], a[3]);
      dups += a[2];
      gaps += a[3];
    } else
      for (int k = 0; k < 3; k++) {
        size_t kl = strlen(keys[k]);
        if (!strncmp(s, keys[k], kl) && s[kl] == ' ')
          v[k] = strtoll(s + kl + 1, NULL, 10);
      }
    *nl = '\n';
  }
  bprintf(&o, "{\"ok\": true, \"total\": %lld, \"counter\": %lld, \"epoch\": "
          "%lld, \"frozen\": %s, \"clients\": {", v[2], v[1], v[0],
          frozen ? "true" : "false");
  if (cl.p) bputs(&o, cl.p);
  bprintf(&o, "}, \"dups\": %lld, \"gaps\": %lld, \"log_lines\": %lld, "
          "\"imports\": %lld, \"state_size\": %zu, \"sha256\": \"%s\"}\n",
          dups, gaps, logn, imports, b.n, h);
  sendall(fd, o.p, o.n);
  free(b.p); free(o.p); free(cl.p);
}

static void op_log(int fd) {
  buf_t log = {0}, o = {0};
  lock();
  slurp(ST_LOG, &log);
  unlock();
  bputs(&o, "{\"ok\": true, \"log\": [");
  int first = 1;
  for (size_t i = 0; i < log.n;) {
    char *nl = memchr(log.p + i, '\n', log.n - i);
    size_t len = nl ? (size_t)(nl - log.p) - i : log.n - i;
    bputs(&o, first ? "\"" : ", \"");
    bput(&o, log.p + i, len);
    bputs(&o, "\"");
    first = 0;
    i += len + 1;
  }
  bputs(&o, "]}\n");
  sendall(fd, o.p, o.n);
  free(log.p); free(o.p);
}

/* one request on fd; 0 to keep the connection, -1 to close it */
static int serve(int fd) {
  static char buf[MAX_LINE + 1];
  size_t n = 0;
  char *nl = NULL;
  while (!nl && n < MAX_LINE) {
    ssize_t r = recv(fd, buf + n, MAX_LINE - n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;  /* closed, or no request line: nothing to answer */
    buf[n + r] = 0;
    nl = memchr(buf + n, '\n', r);
    n += r;
  }
  if (!nl) {
    reply_err(fd, "bad request: line too long");
    return -1;
  }
  *nl = 0;
  clock_gettime(CLOCK_MONOTONIC, &t_req);
  char op[64] = "";
  jstr(buf, "op", op, sizeof op);
  if (!strcmp(op, "export")) op_export(fd);
  else if (!strcmp(op, "import"))
    op_import(fd, buf, nl + 1, n - (size_t)(nl + 1 - buf));
  else if (!strcmp(op, "stats")) op_stats(fd);
  else if (!strcmp(op, "log")) op_log(fd);
  else if (!op[0]) reply_err(fd, "bad request");
  else reply_err(fd, "unknown op %s", op);
  return 0;
}

#define MAX_CONNS 16

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 7001, one = 1;
  if (argc > 3 || port <= 0) {
    fprintf(stderr, "usage: na-state [PORT [ROOT]]\n");
    return 2;
  }
  paths(argc > 2 ? argv[2] : "/tmp");
  signal(SIGPIPE, SIG_IGN);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
      listen(s, 64) < 0) {
    perror("na-state: listen");
    return 1;
  }
  int conns[MAX_CONNS], nconns = 0;  /* oldest first */
  struct pollfd p[MAX_CONNS + 1];
  for (;;) {
    p[0].fd = s;
    p[0].events = POLLIN;
    for (int i = 0; i < nconns; i++) {
      p[i + 1].fd = conns[i];
      p[i + 1].events = POLLIN;
      p[i + 1].revents = 0;
    }
    if (poll(p, nconns + 1, -1) < 0) {
      if (errno != EINTR) perror("na-state: poll");
      continue;
    }
    /* requests on open connections; a closed one leaves the list */
    int kept = 0;
    for (int i = 0; i < nconns; i++) {
      if (p[i + 1].revents && serve(conns[i]) < 0) {
        close(conns[i]);
        continue;
      }
      conns[kept++] = conns[i];
    }
    nconns = kept;
    if (!(p[0].revents & POLLIN)) continue;
    int c = accept(s, NULL, NULL);
    if (c < 0) { if (errno != EINTR) perror("na-state: accept"); continue; }
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (nconns == MAX_CONNS) {  /* full: the oldest makes room */
      close(conns[0]);
      memmove(conns, conns + 1, (MAX_CONNS - 1) * sizeof *conns);
      nconns--;
    }
    conns[nconns++] = c;
  }
}
