
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * The LLM gateway: the only door out of a sandbox.
 *
 * A gateway zone names an internal Docker network (no route out) and a
 * shared memory zone of credentials.  An execution whose location has
 * "perstack_gateway_credentials" runs on that network and gets a random
 * credential, which the operator passes to the container as the provider
 * key (perstack_env ... $perstack_gateway_credential).  A location with
 * "perstack_gateway", served by nginx on the network's host address,
 * admits only the credentials of executions that run now; the operator's
 * proxy_pass and proxy_set_header put the real key on the way out, so the
 * real key never enters a container.
 *
 * A credential is kept in shared memory as its SHA-256 digest, with the
 * worker that issued it (its pid and start time): any worker can check it,
 * only the issuer revokes it, when its execution ends (or when the worker
 * exits).  The credentials of a worker that died are dropped by whoever
 * meets them next, even when another process has its pid by then.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_gateway.h"
#include "ngx_http_perstack_docker.h"
#include "ngx_http_perstack_engines.h"
#include "ngx_http_perstack_conf.h"
#include "ngx_http_perstack_random.h"
#include "ngx_http_perstack_process.h"
#include "ngx_http_perstack_json.h"
#include "ngx_http_perstack_response.h"

#include <openssl/sha.h>
#include <yajl/yajl_tree.h>



#define NGX_HTTP_PERSTACK_CREDENTIAL_PREFIX  "pgw_"
#define NGX_HTTP_PERSTACK_CREDENTIAL_BYTES   32
#define NGX_HTTP_PERSTACK_CREDENTIAL_LEN                                      \
    (sizeof(NGX_HTTP_PERSTACK_CREDENTIAL_PREFIX) - 1                          \
     + ngx_base64_encoded_length(NGX_HTTP_PERSTACK_CREDENTIAL_BYTES) - 1)
#define NGX_HTTP_PERSTACK_GATEWAY_FIELD_MAX  255
/* a credential outlives its execution's time limit by this much at most */
#define NGX_HTTP_PERSTACK_GATEWAY_GRACE      60


struct ngx_http_perstack_gateway_sh_s {
    ngx_rbtree_t                     rbtree;
    ngx_rbtree_node_t                sentinel;
    ngx_uint_t                       count;
    /* for perstack_metrics */
    ngx_atomic_t                     issued;
    ngx_atomic_t                     accepted;
    ngx_atomic_t                     required;
    ngx_atomic_t                     invalid;
};


/*
 * One live credential, in shared memory.  node.key is the first four bytes
 * of the digest; the strings follow the structure.
 */
typedef struct {
    ngx_rbtree_node_t                node;
    u_char                           digest[SHA256_DIGEST_LENGTH];
    ngx_pid_t                        pid;
    uint64_t                         start;      /* the issuer's, or 0 */
    time_t                           expires;    /* 0: never */
    u_char                           execution[NGX_HTTP_PERSTACK_ID_LEN];
    u_char                           expert_len;
    u_char                           job_len;
    u_char                           tag_len;
    u_char                           data[1];
} ngx_http_perstack_credential_t;


static ngx_int_t ngx_http_perstack_gateway_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_perstack_gateway_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_rbtree_key_t ngx_http_perstack_gateway_key(u_char *digest);
static ngx_http_perstack_credential_t *ngx_http_perstack_gateway_find(
    ngx_http_perstack_gateway_t *gw, u_char *digest);
static void ngx_http_perstack_gateway_delete(ngx_http_perstack_gateway_t *gw,
    ngx_http_perstack_credential_t *cred);
static ngx_int_t ngx_http_perstack_gateway_credential_of(
    ngx_http_request_t *r, ngx_http_perstack_gateway_conf_t *gcf,
    ngx_str_t *value);
static ngx_int_t ngx_http_perstack_gateway_refuse(ngx_http_request_t *r,
    const char *code, const char *message);
static ngx_int_t ngx_http_perstack_gateway_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_perstack_credential_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#define NGX_HTTP_PERSTACK_CALLER_EXECUTION  0
#define NGX_HTTP_PERSTACK_CALLER_EXPERT     1
#define NGX_HTTP_PERSTACK_CALLER_JOB        2
#define NGX_HTTP_PERSTACK_CALLER_TAG        3


/*
 * The shared memory tag of gateway zones: not the module's, which the
 * limit zones have, so that nginx itself refuses a zone name used for both.
 */
static ngx_uint_t  ngx_http_perstack_gateway_tag;

/*
 * This worker's start time (0: unknown), which its credentials record with
 * its pid: a pid is reused once its process is gone, the pair is not.
 */


static ngx_http_variable_t  ngx_http_perstack_gateway_vars[] = {

    { ngx_string("perstack_gateway_credential"), NULL,
      ngx_http_perstack_credential_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_NOHASH, 0 },

    { ngx_string("perstack_gateway_execution"), NULL,
      ngx_http_perstack_gateway_variable, NGX_HTTP_PERSTACK_CALLER_EXECUTION,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_gateway_expert"), NULL,
      ngx_http_perstack_gateway_variable, NGX_HTTP_PERSTACK_CALLER_EXPERT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_gateway_job"), NULL,
      ngx_http_perstack_gateway_variable, NGX_HTTP_PERSTACK_CALLER_JOB,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("perstack_gateway_tag"), NULL,
      ngx_http_perstack_gateway_variable, NGX_HTTP_PERSTACK_CALLER_TAG,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_perstack_gateway_add_variables(ngx_conf_t *cf)
{
    return ngx_http_perstack_add_variables(cf, ngx_http_perstack_gateway_vars);
}


/*
 * perstack_gateway_zone zone=name:size network=name subnet=a.b.c.d/n
 *                       [docker=endpoint];
 */

char *
ngx_http_perstack_gateway_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    u_char                         *p;
    ssize_t                         size;
    in_addr_t                       net, mask;
    ngx_str_t                      *value, name, s, docker;
    ngx_uint_t                      i;
    ngx_cidr_t                      cidr;
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_perstack_gateway_t    *gw, **gwp;
    ngx_http_perstack_main_conf_t  *pmcf;

    value = cf->args->elts;

    gw = ngx_pcalloc(cf->pool, sizeof(ngx_http_perstack_gateway_t));
    if (gw == NULL) {
        return NGX_CONF_ERROR;
    }

    size = 0;
    ngx_str_null(&name);
    ngx_str_set(&docker, NGX_HTTP_PERSTACK_DEFAULT_DOCKER);
    gw->firewall = 1;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            if (ngx_http_perstack_zone_parse(cf, &value[i], &name, &size)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "network=", 8) == 0) {
            gw->network.data = value[i].data + 8;
            gw->network.len = value[i].len - 8;
            continue;
        }

        if (ngx_strncmp(value[i].data, "subnet=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            if (ngx_ptocidr(&s, &cidr) == NGX_ERROR
                || cidr.family != AF_INET)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid IPv4 subnet \"%V\"", &s);
                return NGX_CONF_ERROR;
            }

            mask = ntohl(cidr.u.in.mask);

            /* the host takes the first address, containers the others */
            if ((~mask) < 3) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "subnet \"%V\" is too small", &s);
                return NGX_CONF_ERROR;
            }

            net = ntohl(cidr.u.in.addr);

            gw->subnet.data = ngx_pnalloc(cf->pool, NGX_INET_ADDRSTRLEN + 4);
            gw->address.data = ngx_pnalloc(cf->pool, NGX_INET_ADDRSTRLEN);
            if (gw->subnet.data == NULL || gw->address.data == NULL) {
                return NGX_CONF_ERROR;
            }

            p = ngx_sprintf(gw->subnet.data, "%ud.%ud.%ud.%ud/%ui",
                            net >> 24, (net >> 16) & 0xff, (net >> 8) & 0xff,
                            net & 0xff,
                            (ngx_uint_t) __builtin_popcount(mask));
            gw->subnet.len = p - gw->subnet.data;

            net++;
            gw->in_addr = htonl(net);

            p = ngx_sprintf(gw->address.data, "%ud.%ud.%ud.%ud",
                            net >> 24, (net >> 16) & 0xff, (net >> 8) & 0xff,
                            net & 0xff);
            gw->address.len = p - gw->address.data;

            continue;
        }

        if (ngx_strcmp(value[i].data, "firewall=on") == 0) {
            gw->firewall = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "firewall=off") == 0) {
            gw->firewall = 0;
            continue;
        }

        if (ngx_strncmp(value[i].data, "docker=", 7) == 0) {
            docker.data = value[i].data + 7;
            docker.len = value[i].len - 7;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0 || gw->network.len == 0 || gw->subnet.len == 0) {
        return "takes \"zone=name:size network=name subnet=address/bits\"";
    }

    for (i = 0; i < gw->network.len; i++) {
        if (!(isalnum(gw->network.data[i])
              || gw->network.data[i] == '-' || gw->network.data[i] == '_'
              || gw->network.data[i] == '.'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid Docker network name \"%V\"",
                               &gw->network);
            return NGX_CONF_ERROR;
        }
    }

    gw->name = name;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);

    gw->docker = ngx_http_perstack_docker_add(cf, &pmcf->dockers, &docker, 1);
    if (gw->docker == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_perstack_gateway_tag);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_perstack_gateway_init_zone;
    shm_zone->data = gw;

    gwp = ngx_array_push(&pmcf->gateways);
    if (gwp == NULL) {
        return NGX_CONF_ERROR;
    }

    *gwp = gw;

    return NGX_CONF_OK;
}


/*
 * The zone outlives a reload: the old workers' executions still call the
 * gateway, and the new workers answer them.
 */

static ngx_int_t
ngx_http_perstack_gateway_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_perstack_gateway_t  *ogw = data;

    size_t                        len;
    ngx_http_perstack_gateway_t  *gw;

    gw = shm_zone->data;

    if (ogw) {
        gw->sh = ogw->sh;
        gw->shpool = ogw->shpool;
        return NGX_OK;
    }

    gw->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        gw->sh = gw->shpool->data;
        return NGX_OK;
    }

    gw->sh = ngx_slab_calloc(gw->shpool,
                             sizeof(struct ngx_http_perstack_gateway_sh_s));
    if (gw->sh == NULL) {
        return NGX_ERROR;
    }

    gw->shpool->data = gw->sh;

    ngx_rbtree_init(&gw->sh->rbtree, &gw->sh->sentinel,
                    ngx_http_perstack_gateway_insert);

    len = sizeof(" in perstack gateway zone \"\"") + shm_zone->shm.name.len;

    gw->shpool->log_ctx = ngx_slab_alloc(gw->shpool, len);
    if (gw->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(gw->shpool->log_ctx, " in perstack gateway zone \"%V\"%Z",
                &shm_zone->shm.name);

    gw->shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_http_perstack_gateway_t *
ngx_http_perstack_gateway_lookup_zone(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                      i;
    ngx_http_perstack_gateway_t   **gwp;
    ngx_http_perstack_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);

    gwp = pmcf->gateways.elts;

    for (i = 0; i < pmcf->gateways.nelts; i++) {
        if (gwp[i]->name.len == name->len
            && ngx_strncmp(gwp[i]->name.data, name->data, name->len) == 0)
        {
            return gwp[i];
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown perstack gateway zone \"%V\" (it must be "
                       "declared by \"perstack_gateway_zone\" before)", name);

    return NULL;
}


/*
 * perstack_gateway_credentials zone=name [tag=string];  (executions)
 * perstack_gateway zone=name [credential=string];       (the gateway)
 */

char *
ngx_http_perstack_gateway_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_perstack_loc_conf_t *plcf = conf;

    ngx_str_t                          *value, s, extra;
    ngx_uint_t                          i, issue;
    ngx_http_perstack_gateway_conf_t   *gcf, **field;
    ngx_http_compile_complex_value_t    ccv;

    issue = (cmd->offset
             == offsetof(ngx_http_perstack_loc_conf_t, gateway_issue));

    field = (ngx_http_perstack_gateway_conf_t **) ((char *) plcf
                                                   + cmd->offset);

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        if (cf->args->nelts != 2) {
            return "takes \"off\" alone";
        }

        *field = NULL;
        return NGX_CONF_OK;
    }

    gcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_perstack_gateway_conf_t));
    if (gcf == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            gcf->zone = ngx_http_perstack_gateway_lookup_zone(cf, &s);
            if (gcf->zone == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_str_set(&extra, "");

        if (issue && ngx_strncmp(value[i].data, "tag=", 4) == 0) {
            ngx_str_set(&extra, "tag=");

        } else if (!issue
                   && ngx_strncmp(value[i].data, "credential=", 11) == 0)
        {
            ngx_str_set(&extra, "credential=");
        }

        if (extra.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        s.data = value[i].data + extra.len;
        s.len = value[i].len - extra.len;

        gcf->value = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (gcf->value == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &s;
        ccv.complex_value = gcf->value;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (gcf->zone == NULL) {
        return "needs \"zone=name\"";
    }

    *field = gcf;

    return NGX_CONF_OK;
}


char *
ngx_http_perstack_gateway_merge(ngx_conf_t *cf,
    ngx_http_perstack_loc_conf_t *prev, ngx_http_perstack_loc_conf_t *conf)
{
    ngx_http_perstack_gateway_t  *gw;

    ngx_conf_merge_ptr_value(conf->gateway_issue, prev->gateway_issue, NULL);
    ngx_conf_merge_ptr_value(conf->gateway_check, prev->gateway_check, NULL);

    if (conf->gateway_check && conf->execute == 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"perstack_gateway\" and \"perstack_execute\" "
                           "cannot share a location");
        return NGX_CONF_ERROR;
    }

    if (conf->gateway_issue == NULL) {
        return NGX_CONF_OK;
    }

    gw = conf->gateway_issue->zone;

    /* the executions run on the gateway's network and on no other */

    if (conf->network.data == NULL) {
        conf->network = gw->network;

    } else if (conf->network.len != gw->network.len
               || ngx_strncmp(conf->network.data, gw->network.data,
                              gw->network.len) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"perstack_network %V\" conflicts with "
                           "\"perstack_gateway_credentials\": its executions "
                           "run on the network \"%V\"",
                           &conf->network, &gw->network);
        return NGX_CONF_ERROR;
    }

    if (conf->execute == 1 && conf->engines) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the gateway zone \"%V\" is on one engine: "
                           "\"perstack_docker %V\" names a group",
                           &gw->name, &conf->engines->name);
        return NGX_CONF_ERROR;
    }

    if (conf->execute == 1 && conf->docker != gw->docker) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the gateway zone \"%V\" is on the Docker "
                           "endpoint \"%V\", not on \"%V\"",
                           &gw->name, &gw->docker->name,
                           &conf->docker->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Issuing and revoking, in the worker that runs the execution.
 */

ngx_int_t
ngx_http_perstack_gateway_issue(ngx_http_request_t *r,
    ngx_http_perstack_exec_t *exec)
{
    u_char                          *p;
    size_t                           expert_len, job_len, tag_len;
    ngx_str_t                        tag, raw, encoded;
    ngx_slab_pool_t                 *shpool;
    ngx_http_perstack_ctx_t         *ctx;
    ngx_http_perstack_gateway_t     *gw;
    ngx_http_perstack_credential_t  *cred;
    u_char                           bytes[NGX_HTTP_PERSTACK_CREDENTIAL_BYTES];
    u_char                           digest[SHA256_DIGEST_LENGTH];

    gw = exec->conf->gateway_issue->zone;

    ngx_str_null(&tag);

    if (exec->conf->gateway_issue->value
        && ngx_http_complex_value(r, exec->conf->gateway_issue->value, &tag)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* 256 bits from the kernel: the credential cannot be guessed */

    if (ngx_http_perstack_random_bytes(bytes, sizeof(bytes)) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, exec->log, 0,
                      "perstack: no random bytes for a gateway credential");
        return NGX_ERROR;
    }

    exec->credential.data = ngx_pnalloc(exec->pool,
                                        NGX_HTTP_PERSTACK_CREDENTIAL_LEN + 1);
    if (exec->credential.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(exec->credential.data, NGX_HTTP_PERSTACK_CREDENTIAL_PREFIX,
                   sizeof(NGX_HTTP_PERSTACK_CREDENTIAL_PREFIX) - 1);

    raw.data = bytes;
    raw.len = sizeof(bytes);
    encoded.data = p;

    ngx_encode_base64url(&encoded, &raw);

    exec->credential.len = (p - exec->credential.data) + encoded.len;
    exec->credential.data[exec->credential.len] = '\0';

    SHA256(exec->credential.data, exec->credential.len, digest);

    expert_len = ngx_min(exec->expert.len, NGX_HTTP_PERSTACK_GATEWAY_FIELD_MAX);
    job_len = ngx_min(exec->job.len, NGX_HTTP_PERSTACK_GATEWAY_FIELD_MAX);
    tag_len = ngx_min(tag.len, NGX_HTTP_PERSTACK_GATEWAY_FIELD_MAX);

    shpool = gw->shpool;

    ngx_shmtx_lock(&shpool->mutex);

    cred = ngx_slab_alloc_locked(shpool,
                                 offsetof(ngx_http_perstack_credential_t, data)
                                 + expert_len + job_len + tag_len);
    if (cred == NULL) {
        ngx_shmtx_unlock(&shpool->mutex);

        ngx_log_error(NGX_LOG_ALERT, exec->log, 0,
                      "perstack gateway zone \"%V\" is full: %ui credentials",
                      &gw->name, gw->sh->count);
        return NGX_DECLINED;
    }

    ngx_memcpy(cred->digest, digest, sizeof(digest));
    cred->node.key = ngx_http_perstack_gateway_key(digest);
    cred->pid = ngx_pid;
    cred->start = ngx_http_perstack_process_self();
    cred->expires = exec->conf->timeout
                    ? ngx_time() + (time_t) ((exec->conf->timeout
                                              + exec->conf->stop_timeout)
                                             / 1000)
                      + NGX_HTTP_PERSTACK_GATEWAY_GRACE
                    : 0;
    ngx_memcpy(cred->execution, exec->id, NGX_HTTP_PERSTACK_ID_LEN);
    cred->expert_len = (u_char) expert_len;
    cred->job_len = (u_char) job_len;
    cred->tag_len = (u_char) tag_len;

    p = ngx_cpymem(cred->data, exec->expert.data, expert_len);
    p = ngx_cpymem(p, exec->job.data, job_len);
    ngx_memcpy(p, tag.data, tag_len);

    ngx_rbtree_insert(&gw->sh->rbtree, &cred->node);
    gw->sh->count++;
    (void) ngx_atomic_fetch_add(&gw->sh->issued, 1);

    ngx_shmtx_unlock(&shpool->mutex);

    exec->gateway = gw;
    exec->gateway_credential = cred;

    ngx_explicit_memzero(bytes, sizeof(bytes));

    /* for perstack_env: a copy, as the execution may end before the request */

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);

    ctx->credential.data = ngx_pstrdup(r->pool, &exec->credential);
    if (ctx->credential.data == NULL) {
        return NGX_ERROR;
    }

    ctx->credential.len = exec->credential.len;

    return NGX_OK;
}


void
ngx_http_perstack_gateway_revoke(ngx_http_perstack_exec_t *exec)
{
    ngx_http_perstack_gateway_t  *gw;

    if (exec->gateway_credential == NULL) {
        return;
    }

    gw = exec->gateway;

    ngx_shmtx_lock(&gw->shpool->mutex);
    ngx_http_perstack_gateway_delete(gw, exec->gateway_credential);
    ngx_shmtx_unlock(&gw->shpool->mutex);

    exec->gateway_credential = NULL;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, exec->log, 0,
                   "perstack gateway credential revoked");
}


/* a new worker drops what workers that died left behind */

void
ngx_http_perstack_gateway_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i, dropped;
    ngx_rbtree_node_t               *node, *next, *root, *sentinel;
    ngx_http_perstack_gateway_t    **gwp, *gw;
    ngx_http_perstack_main_conf_t   *pmcf;
    ngx_http_perstack_credential_t  *cred;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_perstack_module);
    gwp = pmcf->gateways.elts;

    if (pmcf->gateways.nelts && ngx_http_perstack_process_self() == 0) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "perstack gateway: cannot read this worker's start "
                      "time in /proc/%P/stat: should it die, its "
                      "credentials stay valid while another process has "
                      "its pid", ngx_pid);
    }

    for (i = 0; i < pmcf->gateways.nelts; i++) {
        gw = gwp[i];
        dropped = 0;

        ngx_shmtx_lock(&gw->shpool->mutex);

        root = gw->sh->rbtree.root;
        sentinel = gw->sh->rbtree.sentinel;

        node = (root == sentinel) ? NULL : ngx_rbtree_min(root, sentinel);

        while (node) {
            next = ngx_rbtree_next(&gw->sh->rbtree, node);

            cred = (ngx_http_perstack_credential_t *) node;

            if (ngx_http_perstack_process_gone(cred->pid, cred->start)) {
                ngx_http_perstack_gateway_delete(gw, cred);
                dropped++;
            }

            node = next;
        }

        ngx_shmtx_unlock(&gw->shpool->mutex);

        if (dropped) {
            ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                          "perstack gateway zone \"%V\": dropped %ui "
                          "credentials of workers that are gone",
                          &gw->name, dropped);
        }
    }
}


/* credentials in the order of their digests: one path finds any */

static void
ngx_http_perstack_gateway_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t  **p;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            p = (ngx_memcmp(((ngx_http_perstack_credential_t *) node)->digest,
                            ((ngx_http_perstack_credential_t *) temp)->digest,
                            SHA256_DIGEST_LENGTH)
                 < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_rbtree_key_t
ngx_http_perstack_gateway_key(u_char *digest)
{
    return ((ngx_rbtree_key_t) digest[0] << 24)
           | ((ngx_rbtree_key_t) digest[1] << 16)
           | ((ngx_rbtree_key_t) digest[2] << 8)
           | digest[3];
}


static ngx_http_perstack_credential_t *
ngx_http_perstack_gateway_find(ngx_http_perstack_gateway_t *gw,
    u_char *digest)
{
    ngx_int_t                        rc;
    ngx_rbtree_key_t                 key;
    ngx_rbtree_node_t               *node, *sentinel;
    ngx_http_perstack_credential_t  *cred;

    key = ngx_http_perstack_gateway_key(digest);

    node = gw->sh->rbtree.root;
    sentinel = gw->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (key != node->key) {
            node = (key < node->key) ? node->left : node->right;
            continue;
        }

        cred = (ngx_http_perstack_credential_t *) node;

        rc = ngx_memcmp(digest, cred->digest, SHA256_DIGEST_LENGTH);

        if (rc == 0) {
            return cred;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_perstack_gateway_delete(ngx_http_perstack_gateway_t *gw,
    ngx_http_perstack_credential_t *cred)
{
    ngx_rbtree_delete(&gw->sh->rbtree, &cred->node);
    gw->sh->count--;

    ngx_explicit_memzero(cred->digest, SHA256_DIGEST_LENGTH);
    ngx_slab_free_locked(gw->shpool, cred);
}


/*
 * The gateway's check, in the preaccess phase: "satisfy any" cannot skip
 * it, and limit_req and limit_conn, which come after, can use its
 * variables as keys.
 */

ngx_int_t
ngx_http_perstack_gateway_handler(ngx_http_request_t *r)
{
    u_char                          *p;
    ngx_str_t                        value;
    ngx_http_perstack_ctx_t         *ctx;
    ngx_http_perstack_caller_t      *caller;
    ngx_http_perstack_gateway_t     *gw;
    ngx_http_perstack_loc_conf_t    *plcf;
    ngx_http_perstack_credential_t  *cred;
    u_char                           digest[SHA256_DIGEST_LENGTH];

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_perstack_module);

    if (plcf->gateway_check == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);

    if (ctx && ctx->caller) {
        /* checked already, before an internal redirect to here */
        return NGX_DECLINED;
    }

    gw = plcf->gateway_check->zone;

    if (ngx_http_perstack_gateway_credential_of(r, plcf->gateway_check,
                                                &value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (value.len == 0) {
        (void) ngx_atomic_fetch_add(&gw->sh->required, 1);
        return ngx_http_perstack_gateway_refuse(r, "credential_required",
                   "the gateway takes the credential of a running execution");
    }

    SHA256(value.data, value.len, digest);

    caller = ngx_pcalloc(r->pool, sizeof(ngx_http_perstack_caller_t));
    if (caller == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_shmtx_lock(&gw->shpool->mutex);

    cred = ngx_http_perstack_gateway_find(gw, digest);

    if (cred && ngx_http_perstack_process_gone(cred->pid, cred->start)) {
        ngx_http_perstack_gateway_delete(gw, cred);
        cred = NULL;
    }

    if (cred && cred->expires && cred->expires < ngx_time()) {
        /* its worker revokes it; until then it is refused */
        cred = NULL;
    }

    if (cred) {
        caller->execution.data = ngx_pnalloc(r->pool,
                                             NGX_HTTP_PERSTACK_ID_LEN
                                             + cred->expert_len
                                             + cred->job_len
                                             + cred->tag_len);
        if (caller->execution.data == NULL) {
            ngx_shmtx_unlock(&gw->shpool->mutex);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_cpymem(caller->execution.data, cred->execution,
                       NGX_HTTP_PERSTACK_ID_LEN);
        caller->execution.len = NGX_HTTP_PERSTACK_ID_LEN;

        caller->expert.data = p;
        caller->expert.len = cred->expert_len;
        p = ngx_cpymem(p, cred->data, cred->expert_len);

        caller->job.data = p;
        caller->job.len = cred->job_len;
        p = ngx_cpymem(p, cred->data + cred->expert_len, cred->job_len);

        caller->tag.data = p;
        caller->tag.len = cred->tag_len;
        ngx_memcpy(p, cred->data + cred->expert_len + cred->job_len,
                   cred->tag_len);
    }

    ngx_shmtx_unlock(&gw->shpool->mutex);

    if (cred == NULL) {
        (void) ngx_atomic_fetch_add(&gw->sh->invalid, 1);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "perstack gateway \"%V\" refused a credential that "
                      "belongs to no running execution", &gw->name);

        return ngx_http_perstack_gateway_refuse(r, "invalid_credential",
                   "the credential belongs to no running execution");
    }

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_perstack_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_perstack_module);
    }

    ctx->caller = caller;

    (void) ngx_atomic_fetch_add(&gw->sh->accepted, 1);

    return NGX_DECLINED;
}


/* For perstack_metrics: the zone's credentials and its requests. */

void
ngx_http_perstack_gateway_stats(ngx_http_perstack_gateway_t *gw,
    ngx_http_perstack_gateway_stats_t *st)
{
    ngx_shmtx_lock(&gw->shpool->mutex);
    st->live = gw->sh->count;
    ngx_shmtx_unlock(&gw->shpool->mutex);

    st->issued = gw->sh->issued;
    st->accepted = gw->sh->accepted;
    st->required = gw->sh->required;
    st->invalid = gw->sh->invalid;
}


/*
 * The credential as the operator said, or as provider SDKs send a key:
 * "Authorization: Bearer ..." (OpenAI-style) or "x-api-key" (Anthropic).
 */

static ngx_int_t
ngx_http_perstack_gateway_credential_of(ngx_http_request_t *r,
    ngx_http_perstack_gateway_conf_t *gcf, ngx_str_t *value)
{
    ngx_table_elt_t  *h, *auth;

    if (gcf->value) {
        return ngx_http_complex_value(r, gcf->value, value);
    }

    ngx_str_null(value);

    auth = r->headers_in.authorization;

    if (auth && auth->value.len > 7
        && ngx_strncasecmp(auth->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        value->data = auth->value.data + 7;
        value->len = auth->value.len - 7;

        while (value->len && value->data[0] == ' ') {
            value->data++;
            value->len--;
        }

        return NGX_OK;
    }

    h = ngx_http_perstack_header_in(r, "x-api-key");

    if (h) {
        *value = h->value;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_perstack_gateway_refuse(ngx_http_request_t *r, const char *code,
    const char *message)
{
    ngx_int_t   rc;
    ngx_str_t   text;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_perstack_add_header(r, "WWW-Authenticate",
                                     "Bearer realm=\"perstack gateway\"")
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text.data = (u_char *) message;
    text.len = ngx_strlen(message);

    rc = ngx_http_perstack_send_error(r, NGX_HTTP_UNAUTHORIZED, code, &text,
                                      NULL, NULL);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* $perstack_gateway_execution, _expert, _job, _tag: who called */

static ngx_int_t
ngx_http_perstack_gateway_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                   *s;
    ngx_http_perstack_ctx_t     *ctx;
    ngx_http_perstack_caller_t  *caller;

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);

    if (ctx == NULL || ctx->caller == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    caller = ctx->caller;

    switch (data) {

    case NGX_HTTP_PERSTACK_CALLER_EXECUTION:
        s = &caller->execution;
        break;

    case NGX_HTTP_PERSTACK_CALLER_EXPERT:
        s = &caller->expert;
        break;

    case NGX_HTTP_PERSTACK_CALLER_JOB:
        s = &caller->job;
        break;

    default: /* NGX_HTTP_PERSTACK_CALLER_TAG */
        s = &caller->tag;
        break;
    }

    v->data = s->data;
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* $perstack_gateway_credential: the credential of this request's execution */

static ngx_int_t
ngx_http_perstack_credential_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_perstack_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_perstack_module);

    if (ctx == NULL || ctx->credential.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ctx->credential.data;
    v->len = ctx->credential.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
