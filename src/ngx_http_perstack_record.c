
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * An execution's record: every byte of its stream as it was sent, and
 * where each event ends, kept where no container can write, so that a
 * client that reconnects, to any worker of this nginx and also after a
 * reload, gets the events it missed and then follows the rest.
 *
 *     <path>/<id>.json     whose it is, its job, how it ended: written at
 *                          the start and at the end (through a rename)
 *     <path>/<id>.events   the stream's bytes, appended
 *     <path>/<id>.index    for each event, 8 bytes: where it ends in
 *                          .events; after the last one, all ones
 *     <path>/<id>.cancel   left by a DELETE, seen by the execution's watch
 *
 * The writes are appends to local files that only nginx's user can reach,
 * as access_log's are.  A reader holds a shared lock on .events while it
 * follows: the execution asks for an exclusive one, without waiting, to
 * know whether anyone still follows it, also after a reader's worker died.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_record.h"
#include "ngx_http_perstack_metrics.h"
#include "ngx_http_perstack_process.h"
#include "ngx_http_perstack_writer.h"
#include "ngx_http_perstack_response.h"
#include "ngx_http_perstack_runtime.h"

#include <sys/file.h>
#include <openssl/sha.h>
#include <yajl/yajl_tree.h>


#define NGX_HTTP_PERSTACK_RECORD_META_MAX  16384
#define NGX_HTTP_PERSTACK_RECORD_SWEEP     60000


static ngx_int_t ngx_http_perstack_record_write_meta(
    ngx_http_perstack_exec_t *exec);
static ngx_int_t ngx_http_perstack_record_create(
    ngx_http_perstack_exec_t *exec, const char *suffix);
static ngx_int_t ngx_http_perstack_record_put(ngx_http_perstack_exec_t *exec,
    const char *suffix, const u_char *data, size_t len, off_t offset);
static ngx_int_t ngx_http_perstack_record_write_all(ngx_fd_t fd,
    const u_char *data, size_t len, off_t offset);
static void ngx_http_perstack_record_failed(ngx_http_perstack_exec_t *exec,
    const char *what, const u_char *name);
static ngx_str_t ngx_http_perstack_record_string(ngx_pool_t *pool,
    yajl_val tree, const char *key);
static uint64_t ngx_http_perstack_record_number(yajl_val tree,
    const char *key);
static void ngx_http_perstack_record_sweep(ngx_event_t *ev);
static void ngx_http_perstack_record_sweep_dir(
    ngx_http_perstack_record_dir_t *dir, ngx_log_t *log, uint64_t *count,
    uint64_t *bytes);


static ngx_event_t       ngx_http_perstack_record_sweep_ev;
static ngx_connection_t  ngx_http_perstack_record_sweep_conn;
static ngx_array_t      *ngx_http_perstack_record_dirs;
static ngx_msec_t        ngx_http_perstack_record_sweep_every;


ngx_int_t
ngx_http_perstack_record_open(ngx_http_perstack_exec_t *exec)
{
    ngx_str_t                    id;
    ngx_http_perstack_record_t  *rec;

    rec = ngx_pcalloc(exec->pool, sizeof(ngx_http_perstack_record_t));
    if (rec == NULL) {
        return NGX_ERROR;
    }

    rec->max_size = exec->conf->record_max_size;

    id.data = exec->id;
    id.len = NGX_HTTP_PERSTACK_ID_LEN;

    rec->name = ngx_http_perstack_record_name(exec->pool,
                                              &exec->conf->record_path->name,
                                              &id, "");
    if (rec->name == NULL) {
        return NGX_ERROR;
    }

    rec->name_len = ngx_strlen(rec->name);
    exec->record = rec;

    /* made here, new; each batch opens them again (see write()) */

    if (ngx_http_perstack_record_create(exec, ".events") != NGX_OK
        || ngx_http_perstack_record_create(exec, ".index") != NGX_OK)
    {
        ngx_http_perstack_record_failed(exec, "could not be created",
                                        rec->name);
        return NGX_ERROR;
    }

    rec->created = 1;
    exec->record_started = ngx_http_perstack_record_now();

    if (ngx_http_perstack_record_write_meta(exec) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_perstack_metrics_record_added();

    return NGX_OK;
}


/*
 * A batch of the stream: its len bytes as they go to the client, and
 * where its n events end in them, the first being at position first.
 * NGX_DECLINED: the record would grow over perstack_record_max_size;
 * NGX_ERROR: it could not be written.  Either way it takes no more, and
 * the execution is to end; a full one still takes the closing event,
 * after the last event it had, so that its followers get the end (the
 * positions between are missing).
 *
 * The files are opened for each batch, and closed: an execution holds
 * none of the worker's descriptors while it waits for its container's
 * output, and a batch holds many events.
 */

ngx_int_t
ngx_http_perstack_record_write(ngx_http_perstack_exec_t *exec,
    const u_char *data, size_t len, uint64_t first, const uint32_t *ends,
    ngx_uint_t n)
{
    off_t                        base;
    uint64_t                     values[NGX_HTTP_PERSTACK_MARKS];
    ngx_uint_t                   i;
    ngx_http_perstack_record_t  *rec;

    rec = exec->record;

    if (rec == NULL || rec->failed || (rec->full && !rec->closing)) {
        return NGX_OK;
    }

    if (rec->max_size && !rec->closing
        && rec->size + (off_t) len > rec->max_size)
    {
        rec->full = 1;

        ngx_log_error(NGX_LOG_WARN, exec->log, 0,
                      "perstack: the record is over perstack_record_max_size "
                      "(%O)", rec->max_size);
        return NGX_DECLINED;
    }

    if (ngx_http_perstack_record_put(exec, ".events", data, len, -1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    base = rec->size;
    rec->size += len;

    ngx_http_perstack_metrics_record_grew(len);

    if (first == 0 && n) {
        /* no event has position 0 */
        first++;
        ends++;
        n--;
    }

    n = ngx_min(n, NGX_HTTP_PERSTACK_MARKS);

    if (n == 0) {
        return NGX_OK;
    }

    for (i = 0; i < n; i++) {
        values[i] = (uint64_t) (base + (off_t) ends[i]);
    }

    return ngx_http_perstack_record_put(exec, ".index", (u_char *) values,
                                        n * sizeof(uint64_t),
                                        (off_t) (first - 1)
                                        * sizeof(uint64_t));
}


/*
 * The closing event is in: the index says the stream is over, and the
 * .json how it ended.  A record that failed still gets its end, so that
 * its readers stop following it.
 */

void
ngx_http_perstack_record_end(ngx_http_perstack_exec_t *exec)
{
    uint64_t                     value;
    ngx_http_perstack_record_t  *rec;

    rec = exec->record;

    if (rec == NULL || rec->ended) {
        return;
    }

    rec->ended = 1;

    if (!rec->created) {
        return;
    }

    /* after the last event marked, whatever the failure */

    value = NGX_HTTP_PERSTACK_RECORD_END;

    (void) ngx_http_perstack_record_put(exec, ".index", (u_char *) &value,
                                        sizeof(uint64_t),
                                        (off_t) exec->sequence
                                        * sizeof(uint64_t));

    (void) ngx_http_perstack_record_write_meta(exec);
}


/*
 * Whether a reader follows the execution: each holds a shared lock on
 * .events, which the kernel drops with the reader's descriptor, also when
 * its worker dies.  The execution asks for an exclusive one, on a
 * descriptor of its own, without waiting.
 */

ngx_uint_t
ngx_http_perstack_record_followed(ngx_http_perstack_exec_t *exec)
{
    ngx_fd_t                     fd;
    ngx_err_t                    err;
    ngx_uint_t                   followed;
    ngx_http_perstack_record_t  *rec;

    rec = exec->record;

    if (rec == NULL || !rec->created) {
        return 0;
    }

    ngx_memcpy(rec->name + rec->name_len, ".events", sizeof(".events"));

    fd = ngx_open_file(rec->name, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        return 0;
    }

    followed = 0;

    if (flock(fd, LOCK_EX|LOCK_NB) == -1) {
        err = ngx_errno;
        followed = (err == NGX_EAGAIN);
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, exec->log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", rec->name);
    }

    return followed;
}


ngx_uint_t
ngx_http_perstack_record_cancelled(ngx_http_perstack_exec_t *exec)
{
    ngx_file_info_t              fi;
    ngx_http_perstack_record_t  *rec;

    rec = exec->record;

    if (rec == NULL) {
        return 0;
    }

    ngx_memcpy(rec->name + rec->name_len, ".cancel", sizeof(".cancel"));

    return (ngx_file_info(rec->name, &fi) != NGX_FILE_ERROR);
}


/*
 * perstack_owner's value for this request, as the record keeps it: its
 * SHA-256, in hex (no owner: empty).  The record holds no user's name.
 */

ngx_int_t
ngx_http_perstack_record_owner(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_pool_t *pool, ngx_str_t *owner)
{
    u_char     digest[SHA256_DIGEST_LENGTH];
    ngx_str_t  value;

    owner->len = 0;
    owner->data = (u_char *) "";

    if (cv == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, cv, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    SHA256(value.data, value.len, digest);

    owner->data = ngx_pnalloc(pool, 2 * SHA256_DIGEST_LENGTH);
    if (owner->data == NULL) {
        return NGX_ERROR;
    }

    ngx_hex_dump(owner->data, digest, SHA256_DIGEST_LENGTH);
    owner->len = 2 * SHA256_DIGEST_LENGTH;

    return NGX_OK;
}


/* "<path>/<id><suffix>", NUL-terminated, with room for a longer suffix */

u_char *
ngx_http_perstack_record_name(ngx_pool_t *pool, ngx_str_t *path,
    ngx_str_t *id, const char *suffix)
{
    u_char  *name, *p;

    name = ngx_pnalloc(pool, path->len + 1 + id->len
                             + sizeof(".events.tmp"));
    if (name == NULL) {
        return NULL;
    }

    p = ngx_cpymem(name, path->data, path->len);
    *p++ = '/';
    p = ngx_cpymem(p, id->data, id->len);
    (void) ngx_cpystrn(p, (u_char *) suffix, sizeof(".events.tmp"));

    return name;
}


uint64_t
ngx_http_perstack_record_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/* the .json, written whole to a temporary file, then renamed over */

static ngx_int_t
ngx_http_perstack_record_write_meta(ngx_http_perstack_exec_t *exec)
{
    u_char                      *tmp;
    size_t                       len;
    ngx_fd_t                     fd;
    ngx_http_perstack_jw_t       jw;
    ngx_http_perstack_record_t  *rec;

    rec = exec->record;

    ngx_http_perstack_jw_pool(&jw, exec->pool, 1024);
    ngx_http_perstack_jw_raw(&jw, "{\"execution\":");
    ngx_http_perstack_jw_str(&jw, exec->id, NGX_HTTP_PERSTACK_ID_LEN);
    ngx_http_perstack_jw_raw(&jw, exec->format
                                  == NGX_HTTP_PERSTACK_FORMAT_NDJSON
                                  ? ",\"format\":\"ndjson\""
                                  : ",\"format\":\"sse\"");
    ngx_http_perstack_jw_raw(&jw, ",\"owner\":");
    ngx_http_perstack_jw_str(&jw, exec->owner.data, exec->owner.len);

    ngx_http_perstack_jw_raw(&jw, ",\"job\":");
    ngx_http_perstack_jw_str(&jw, exec->job.data, exec->job.len);
    ngx_http_perstack_jw_raw(&jw, ",\"expert\":");
    ngx_http_perstack_jw_str(&jw, exec->expert.data, exec->expert.len);
    ngx_http_perstack_jw_raw(&jw, ",\"started\":");
    ngx_http_perstack_jw_uint(&jw, exec->record_started);
    ngx_http_perstack_jw_raw(&jw, ",\"keep\":");
    ngx_http_perstack_jw_uint(&jw, exec->conf->record_keep);
    ngx_http_perstack_jw_raw(&jw, ",\"pid\":");
    ngx_http_perstack_jw_uint(&jw, ngx_pid);
    ngx_http_perstack_jw_raw(&jw, ",\"start\":");
    ngx_http_perstack_jw_uint(&jw, ngx_http_perstack_process_self());

    if (rec->ended) {
        ngx_http_perstack_jw_raw(&jw, ",\"state\":\"ended\",\"outcome\":");
        ngx_http_perstack_jw_str(&jw,
                    (u_char *) ngx_http_perstack_outcome_name(exec->outcome),
                    ngx_strlen(ngx_http_perstack_outcome_name(exec->outcome)));
        ngx_http_perstack_jw_raw(&jw, ",\"ended\":");
        ngx_http_perstack_jw_uint(&jw, ngx_http_perstack_record_now());
        ngx_http_perstack_jw_raw(&jw, ",\"events\":");
        ngx_http_perstack_jw_uint(&jw, exec->sequence);

    } else {
        ngx_http_perstack_jw_raw(&jw, ",\"state\":\"running\"");
    }

    ngx_http_perstack_jw_raw(&jw, "}\n");

    if (ngx_http_perstack_jw_failed(&jw)) {
        return NGX_ERROR;
    }

    tmp = ngx_pnalloc(exec->pool, rec->name_len + sizeof(".json.tmp"));
    if (tmp == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(tmp, rec->name, rec->name_len);
    ngx_memcpy(tmp + rec->name_len, ".json.tmp", sizeof(".json.tmp"));

    fd = ngx_open_file(tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE, 0600);
    if (fd == NGX_INVALID_FILE) {
        ngx_http_perstack_record_failed(exec, "could not be created", tmp);
        return NGX_ERROR;
    }

    len = jw.pos - jw.start;

    if (ngx_http_perstack_record_write_all(fd, jw.start, len, 0) != NGX_OK) {
        (void) ngx_close_file(fd);
        (void) ngx_delete_file(tmp);
        ngx_http_perstack_record_failed(exec, "could not be written", tmp);
        return NGX_ERROR;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, exec->log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", tmp);
    }

    ngx_memcpy(rec->name + rec->name_len, ".json", sizeof(".json"));

    if (ngx_rename_file(tmp, rec->name) == NGX_FILE_ERROR) {
        (void) ngx_delete_file(tmp);
        ngx_http_perstack_record_failed(exec, "could not be renamed to",
                                        rec->name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "<id><suffix>", made new, for nginx's user only */

static ngx_int_t
ngx_http_perstack_record_create(ngx_http_perstack_exec_t *exec,
    const char *suffix)
{
    ngx_fd_t                     fd;
    ngx_http_perstack_record_t  *rec;

    rec = exec->record;

    (void) ngx_cpystrn(rec->name + rec->name_len, (u_char *) suffix,
                       sizeof(".events.tmp"));

    fd = ngx_open_file(rec->name, NGX_FILE_WRONLY,
                       NGX_FILE_CREATE_OR_OPEN|O_EXCL, 0600);
    if (fd == NGX_INVALID_FILE) {
        return NGX_ERROR;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * len bytes into "<id><suffix>", at offset, or appended (offset -1); a
 * failure is logged, and the record takes no more.
 */

static ngx_int_t
ngx_http_perstack_record_put(ngx_http_perstack_exec_t *exec,
    const char *suffix, const u_char *data, size_t len, off_t offset)
{
    ngx_fd_t                     fd;
    ngx_http_perstack_record_t  *rec;

    rec = exec->record;

    (void) ngx_cpystrn(rec->name + rec->name_len, (u_char *) suffix,
                       sizeof(".events.tmp"));

    fd = ngx_open_file(rec->name, offset < 0 ? NGX_FILE_APPEND
                                             : NGX_FILE_WRONLY,
                       NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_http_perstack_record_failed(exec, "could not be opened",
                                        rec->name);
        return NGX_ERROR;
    }

    if (ngx_http_perstack_record_write_all(fd, data, len, offset) != NGX_OK) {
        ngx_http_perstack_record_failed(exec, "could not be written",
                                        rec->name);
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_http_perstack_record_failed(exec, "could not be written",
                                        rec->name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* offset -1: an append */

static ngx_int_t
ngx_http_perstack_record_write_all(ngx_fd_t fd, const u_char *data,
    size_t len, off_t offset)
{
    ssize_t  n;

    while (len) {
        if (offset < 0) {
            n = write(fd, data, len);

        } else {
            n = pwrite(fd, data, len, offset);
        }

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                continue;
            }

            return NGX_ERROR;
        }

        if (n == 0) {
            ngx_set_errno(NGX_ENOSPC);
            return NGX_ERROR;
        }

        data += n;
        len -= n;

        if (offset >= 0) {
            offset += n;
        }
    }

    return NGX_OK;
}


static void
ngx_http_perstack_record_failed(ngx_http_perstack_exec_t *exec,
    const char *what, const u_char *name)
{
    ngx_http_perstack_record_t  *rec;

    rec = exec->record;

    ngx_log_error(NGX_LOG_CRIT, exec->log, ngx_errno,
                  "perstack: the execution's record \"%s\" %s", name, what);

    if (rec) {
        rec->failed = 1;
    }
}


/*
 * Reading.
 */

ngx_int_t
ngx_http_perstack_record_read_meta(ngx_pool_t *pool, ngx_str_t *path,
    ngx_str_t *id, ngx_http_perstack_record_meta_t *meta, ngx_log_t *log)
{
    u_char           *name, *buf, *p;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         format, state;
    yajl_val          tree;
    ngx_file_info_t   fi;

    ngx_memzero(meta, sizeof(ngx_http_perstack_record_meta_t));

    name = ngx_http_perstack_record_name(pool, path, id, ".json");
    if (name == NULL) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno == NGX_ENOENT || ngx_errno == NGX_ENOTDIR) {
            return NGX_DECLINED;
        }

        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", name);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > NGX_HTTP_PERSTACK_RECORD_META_MAX)
    {
        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                      "perstack: the record \"%s\" is not readable", name);
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    buf = ngx_pnalloc(pool, ngx_file_size(&fi) + 1);
    if (buf == NULL) {
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, buf, ngx_file_size(&fi));

    (void) ngx_close_file(fd);

    if (n != (ssize_t) ngx_file_size(&fi)) {
        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                      "perstack: the record \"%s\" could not be read", name);
        return NGX_ERROR;
    }

    buf[n] = '\0';

    tree = yajl_tree_parse((char *) buf, NULL, 0);

    if (tree == NULL || !YAJL_IS_OBJECT(tree)) {
        if (tree) {
            yajl_tree_free(tree);
        }

        ngx_log_error(NGX_LOG_CRIT, log, 0,
                      "perstack: the record \"%s\" is corrupt", name);
        return NGX_ERROR;
    }

    meta->owner = ngx_http_perstack_record_string(pool, tree, "owner");
    meta->job = ngx_http_perstack_record_string(pool, tree, "job");
    meta->expert = ngx_http_perstack_record_string(pool, tree, "expert");
    meta->outcome = ngx_http_perstack_record_string(pool, tree, "outcome");
    format = ngx_http_perstack_record_string(pool, tree, "format");
    state = ngx_http_perstack_record_string(pool, tree, "state");

    meta->started = ngx_http_perstack_record_number(tree, "started");
    meta->keep = (ngx_msec_t) ngx_http_perstack_record_number(tree, "keep");
    meta->finished = ngx_http_perstack_record_number(tree, "ended");
    meta->events = ngx_http_perstack_record_number(tree, "events");
    meta->pid = (ngx_pid_t) ngx_http_perstack_record_number(tree, "pid");
    meta->start = ngx_http_perstack_record_number(tree, "start");

    yajl_tree_free(tree);

    p = format.data;

    meta->format = (format.len == 6 && ngx_strncmp(p, "ndjson", 6) == 0)
                   ? NGX_HTTP_PERSTACK_FORMAT_NDJSON
                   : NGX_HTTP_PERSTACK_FORMAT_SSE;

    meta->ended = (state.len == 5 && ngx_strncmp(state.data, "ended", 5) == 0);

    if (meta->owner.data == NULL || meta->job.data == NULL
        || meta->expert.data == NULL || meta->outcome.data == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Where the events after position start in .events, from the index: the
 * end of event "position", or 0.  *events: how many the index has, and
 * *ended whether the closing event is among them.  NGX_DECLINED: the index
 * has no event "position" (yet).
 */

ngx_int_t
ngx_http_perstack_record_position(ngx_fd_t index, uint64_t position,
    off_t *offset, uint64_t *events, ngx_uint_t *ended)
{
    ssize_t          n;
    uint64_t         value, count;
    ngx_file_info_t  fi;

    if (ngx_fd_info(index, &fi) == NGX_FILE_ERROR) {
        return NGX_ERROR;
    }

    count = ngx_file_size(&fi) / sizeof(uint64_t);
    *ended = 0;

    if (count) {
        n = pread(index, &value, sizeof(uint64_t),
                  (off_t) (count - 1) * sizeof(uint64_t));

        if (n != sizeof(uint64_t)) {
            return NGX_ERROR;
        }

        if (value == NGX_HTTP_PERSTACK_RECORD_END) {
            *ended = 1;
            count--;
        }
    }

    *events = count;

    if (position == 0) {
        *offset = 0;
        return NGX_OK;
    }

    if (position > count) {
        return NGX_DECLINED;
    }

    n = pread(index, &value, sizeof(uint64_t),
              (off_t) (position - 1) * sizeof(uint64_t));

    if (n != sizeof(uint64_t) || value == NGX_HTTP_PERSTACK_RECORD_END
        || value == 0)
    {
        /* an entry not written yet reads as zeros */
        return NGX_DECLINED;
    }

    *offset = (off_t) value;

    return NGX_OK;
}


ngx_int_t
ngx_http_perstack_record_cancel(ngx_pool_t *pool, ngx_str_t *path,
    ngx_str_t *id, ngx_log_t *log)
{
    u_char    *name;
    ngx_fd_t   fd;

    name = ngx_http_perstack_record_name(pool, path, id, ".cancel");
    if (name == NULL) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name, NGX_FILE_WRONLY, NGX_FILE_CREATE_OR_OPEN, 0600);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", name);
        return NGX_ERROR;
    }

    (void) ngx_close_file(fd);

    return NGX_OK;
}


/*
 * Ended longer ago than its perstack_record_keep, or its worker died
 * without ending it as long ago.
 */

ngx_uint_t
ngx_http_perstack_record_expired(ngx_http_perstack_record_meta_t *meta)
{
    ngx_msec_t  keep;
    uint64_t  now, since;

    keep = meta->keep;
    now = ngx_http_perstack_record_now();

    if (meta->ended) {
        since = meta->finished;

    } else if (ngx_http_perstack_process_gone(meta->pid, meta->start)) {
        since = meta->started;

    } else {
        return 0;
    }

    return (now > since && now - since > keep);
}


static ngx_str_t
ngx_http_perstack_record_string(ngx_pool_t *pool, yajl_val tree,
    const char *key)
{
    ngx_str_t     s;
    yajl_val      v;
    const char   *path[2], *str;

    path[0] = key;
    path[1] = NULL;

    v = yajl_tree_get(tree, path, yajl_t_string);

    s.len = 0;
    s.data = (u_char *) "";

    str = v ? YAJL_GET_STRING(v) : NULL;

    if (str == NULL) {
        return s;
    }

    s.len = ngx_strlen(str);
    s.data = ngx_pnalloc(pool, s.len + 1);

    if (s.data) {
        ngx_memcpy(s.data, str, s.len + 1);
    }

    return s;
}


static uint64_t
ngx_http_perstack_record_number(yajl_val tree, const char *key)
{
    yajl_val     v;
    const char  *path[2];

    path[0] = key;
    path[1] = NULL;

    v = yajl_tree_get(tree, path, yajl_t_number);

    if (v == NULL || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0) {
        return 0;
    }

    return (uint64_t) YAJL_GET_INTEGER(v);
}


/*
 * The sweep: records that ended longer than perstack_record_keep ago, and
 * those whose worker died before their end, are removed, by every worker,
 * once a minute, or as often as the shortest keep if that is shorter (a
 * name another removed first is no error).
 */

void
ngx_http_perstack_record_init_process(ngx_cycle_t *cycle, ngx_array_t *dirs)
{
    ngx_uint_t                       i;
    ngx_http_perstack_record_dir_t  *dir;

    if (dirs == NULL || dirs->nelts == 0) {
        return;
    }

    ngx_http_perstack_record_dirs = dirs;
    ngx_http_perstack_record_sweep_every = NGX_HTTP_PERSTACK_RECORD_SWEEP;

    dir = dirs->elts;

    for (i = 0; i < dirs->nelts; i++) {
        ngx_http_perstack_record_sweep_every =
                   ngx_min(ngx_http_perstack_record_sweep_every,
                           ngx_max(dir[i].keep, 1000));
    }

    ngx_http_perstack_record_sweep_conn.fd = (ngx_socket_t) -1;
    ngx_http_perstack_record_sweep_ev.handler =
                                             ngx_http_perstack_record_sweep;
    ngx_http_perstack_record_sweep_ev.data =
                                        &ngx_http_perstack_record_sweep_conn;
    ngx_http_perstack_record_sweep_ev.log = cycle->log;
    ngx_http_perstack_record_sweep_ev.cancelable = 1;

    /* at once: what a previous nginx left */
    ngx_add_timer(&ngx_http_perstack_record_sweep_ev, 1000);
}


static void
ngx_http_perstack_record_sweep(ngx_event_t *ev)
{
    uint64_t                         count, bytes;
    ngx_uint_t                       i;
    ngx_http_perstack_record_dir_t  *dir;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    dir = ngx_http_perstack_record_dirs->elts;
    count = 0;
    bytes = 0;

    for (i = 0; i < ngx_http_perstack_record_dirs->nelts; i++) {
        ngx_http_perstack_record_sweep_dir(&dir[i], ev->log, &count, &bytes);
    }

    /* what is left, for perstack_metrics */
    ngx_http_perstack_metrics_records(count, bytes);

    ngx_add_timer(ev, ngx_http_perstack_record_sweep_every);
}


static void
ngx_http_perstack_record_sweep_dir(ngx_http_perstack_record_dir_t *dir,
    ngx_log_t *log, uint64_t *count, uint64_t *bytes)
{
    u_char                           *name;
    size_t                            len;
    ngx_dir_t                         d;
    ngx_str_t                         id;
    ngx_uint_t                        i;
    ngx_pool_t                       *pool;
    ngx_file_info_t                   fi;
    ngx_http_perstack_record_meta_t   meta;

    static const char  *suffixes[] = {
        ".events", ".index", ".cancel", ".json"
    };

    if (ngx_open_dir(&dir->path->name, &d) == NGX_ERROR) {
        return;
    }

    pool = ngx_create_pool(4096, log);
    if (pool == NULL) {
        (void) ngx_close_dir(&d);
        return;
    }

    for ( ;; ) {
        ngx_set_errno(0);

        if (ngx_read_dir(&d) == NGX_ERROR) {
            break;
        }

        len = ngx_de_namelen(&d);
        name = ngx_de_name(&d);

        if (len != NGX_HTTP_PERSTACK_ID_LEN + sizeof(".json") - 1
            || ngx_strcmp(name + NGX_HTTP_PERSTACK_ID_LEN, ".json") != 0)
        {
            continue;
        }

        id.data = ngx_pnalloc(pool, NGX_HTTP_PERSTACK_ID_LEN);
        if (id.data == NULL) {
            break;
        }

        ngx_memcpy(id.data, name, NGX_HTTP_PERSTACK_ID_LEN);
        id.len = NGX_HTTP_PERSTACK_ID_LEN;

        if (ngx_http_perstack_record_read_meta(pool, &dir->path->name, &id,
                                               &meta, log)
            != NGX_OK
            || !ngx_http_perstack_record_expired(&meta))
        {
            /* kept (or being written): counted */
            (*count)++;

            name = ngx_http_perstack_record_name(pool, &dir->path->name,
                                                 &id, ".events");

            if (name && ngx_file_info(name, &fi) != NGX_FILE_ERROR) {
                *bytes += ngx_file_size(&fi);
            }

            continue;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                       "perstack record: removing \"%V\"", &id);

        for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
            name = ngx_http_perstack_record_name(pool, &dir->path->name,
                                                 &id, suffixes[i]);

            if (name && ngx_delete_file(name) == NGX_FILE_ERROR
                && ngx_errno != NGX_ENOENT)
            {
                ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                              ngx_delete_file_n " \"%s\" failed", name);
            }
        }
    }

    ngx_destroy_pool(pool);
    (void) ngx_close_dir(&d);
}
