
/*
 * Copyright (C) The ngx_http_perstack_module authors
 *
 * What a gateway needs of the host, checked at start and at each reload,
 * in the master (or in "nginx -t"): its Docker network, internal and with
 * its subnet, and (unless "firewall=off") the firewall chains of its
 * bridge.  nginx only looks; bin/perstack-gateway-setup makes them.
 */


#include "ngx_http_perstack_common.h"
#include "ngx_http_perstack_gateway_host.h"
#include "ngx_http_perstack_docker.h"
#include "ngx_http_perstack_json.h"

#include <yajl/yajl_tree.h>

#include <spawn.h>
#include <sys/wait.h>


/* where a kernel with IPv6 shows its settings */
#define NGX_HTTP_PERSTACK_IPV6_PROC          "/proc/sys/net/ipv6"
/* the command that makes a gateway's network and chains (bin/) */
#define NGX_HTTP_PERSTACK_GATEWAY_SETUP      "perstack-gateway-setup"


/*
 * What a gateway needs of the host, worked out from the configuration
 * while it is checked: the ports nginx listens on at the gateway's
 * address, and the command that makes the network and the chains for
 * them, for the errors to name.
 */
typedef struct {
    ngx_http_perstack_gateway_t     *gw;
    ngx_array_t                      ports;      /* in_port_t */
    ngx_str_t                        setup;
} ngx_http_perstack_gateway_host_t;


static ngx_int_t ngx_http_perstack_gateway_ports(ngx_conf_t *cf,
    ngx_http_perstack_gateway_host_t *host);
static ngx_int_t ngx_http_perstack_gateway_network(ngx_conf_t *cf,
    ngx_http_perstack_gateway_host_t *host);
static ngx_int_t ngx_http_perstack_gateway_network_check(ngx_conf_t *cf,
    ngx_http_perstack_gateway_host_t *host, u_char *json);
static ngx_int_t ngx_http_perstack_gateway_firewall(ngx_conf_t *cf,
    ngx_http_perstack_gateway_host_t *host);
static ngx_int_t ngx_http_perstack_gateway_chain(ngx_conf_t *cf,
    ngx_http_perstack_gateway_host_t *host, ngx_uint_t v6, u_char *chain);
static ngx_int_t ngx_http_perstack_gateway_run(ngx_conf_t *cf, char *prog,
    ngx_str_t *out, ...);
static long ngx_http_perstack_gateway_engine(ngx_conf_t *cf,
    ngx_http_perstack_gateway_t *gw, u_char **response);


/*
 * After the configuration is read, in the master (or in "nginx -t"): each
 * gateway's network must exist, be internal and have the configured subnet,
 * so that nginx can listen on the host's address in it, and (unless
 * "firewall=off") the firewall chains of its bridge must be as the gateway
 * needs them.  nginx only looks: the network and the chains are the
 * operator's, made by perstack-gateway-setup (bin/ in the module's
 * sources), and each error names that command with the arguments to run.
 * These are blocking calls, as resolving a proxy_pass host name is, before
 * any worker runs.
 */

ngx_int_t
ngx_http_perstack_gateway_init(ngx_conf_t *cf)
{
    ngx_uint_t                        i;
    ngx_http_perstack_gateway_t     **gwp;
    ngx_http_perstack_main_conf_t    *pmcf;
    ngx_http_perstack_gateway_host_t  host;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_perstack_module);

    gwp = pmcf->gateways.elts;

    for (i = 0; i < pmcf->gateways.nelts; i++) {
        host.gw = gwp[i];

        if (ngx_http_perstack_gateway_ports(cf, &host) != NGX_OK
            || ngx_http_perstack_gateway_network(cf, &host) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The ports nginx listens on at the gateway's address, each once, and the
 * command that makes the network and the chains for them.
 */

static ngx_int_t
ngx_http_perstack_gateway_ports(ngx_conf_t *cf,
    ngx_http_perstack_gateway_host_t *host)
{
    u_char                       *p;
    size_t                        len;
    in_port_t                    *port, n;
    ngx_str_t                     def;
    ngx_uint_t                    i, j, k, docker;
    struct sockaddr_in           *sin;
    ngx_http_conf_addr_t         *addr;
    ngx_http_conf_port_t         *ports;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_perstack_gateway_t  *gw;

    gw = host->gw;

    if (ngx_array_init(&host->ports, cf->temp_pool, 2, sizeof(in_port_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    ports = cmcf->ports ? cmcf->ports->elts : NULL;

    for (i = 0; ports && i < cmcf->ports->nelts; i++) {

        if (ports[i].family != AF_INET) {
            continue;
        }

        addr = ports[i].addrs.elts;

        for (j = 0; j < ports[i].addrs.nelts; j++) {
            sin = (struct sockaddr_in *) addr[j].opt.sockaddr;

            if (sin->sin_addr.s_addr != gw->in_addr) {
                continue;
            }

            n = ntohs(sin->sin_port);
            port = host->ports.elts;

            for (k = 0; k < host->ports.nelts; k++) {
                if (port[k] == n) {
                    break;
                }
            }

            if (k < host->ports.nelts) {
                continue;
            }

            port = ngx_array_push(&host->ports);
            if (port == NULL) {
                return NGX_ERROR;
            }

            *port = n;
        }
    }

    ngx_str_set(&def, NGX_HTTP_PERSTACK_DEFAULT_DOCKER);

    docker = (gw->docker->name.len != def.len
              || ngx_strncmp(gw->docker->name.data, def.data, def.len) != 0);

    len = sizeof(NGX_HTTP_PERSTACK_GATEWAY_SETUP " --zone  --network "
                 " --subnet  --docker  --no-firewall")
          + gw->name.len + gw->network.len + gw->subnet.len
          + gw->docker->name.len
          + host->ports.nelts * sizeof(" --port 65535");

    host->setup.data = ngx_pnalloc(cf->temp_pool, len);
    if (host->setup.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(host->setup.data,
                    NGX_HTTP_PERSTACK_GATEWAY_SETUP " --zone %V --network %V "
                    "--subnet %V", &gw->name, &gw->network, &gw->subnet);

    if (docker) {
        p = ngx_sprintf(p, " --docker %V", &gw->docker->name);
    }

    if (!gw->firewall) {
        p = ngx_sprintf(p, " --no-firewall");
    }

    port = host->ports.elts;

    for (k = 0; gw->firewall && k < host->ports.nelts; k++) {
        p = ngx_sprintf(p, " --port %d", (int) port[k]);
    }

    host->setup.len = p - host->setup.data;

    return NGX_OK;
}


#define NGX_HTTP_PERSTACK_NETWORK_RESPONSE  65536

static ngx_int_t
ngx_http_perstack_gateway_network(ngx_conf_t *cf,
    ngx_http_perstack_gateway_host_t *host)
{
    u_char                       *response;
    long                          status;
    ngx_http_perstack_gateway_t  *gw;

    gw = host->gw;

    response = (u_char *) "";

    status = ngx_http_perstack_gateway_engine(cf, gw, &response);

    if (status == 404) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "perstack gateway \"%V\": the Docker network "
                           "\"%V\" does not exist: run \"%V\" as root "
                           "before nginx starts",
                           &gw->name, &gw->network, &host->setup);
        return NGX_ERROR;
    }

    if (status != 200) {
        if (status > 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "perstack gateway \"%V\": the Docker Engine at "
                               "\"%V\" answered %l to GET /networks/%V: %s",
                               &gw->name, &gw->docker->name, status,
                               &gw->network, response);
        }

        return NGX_ERROR;
    }

    if (ngx_http_perstack_gateway_network_check(cf, host, response)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_perstack_gateway_firewall(cf, host);
}


static ngx_int_t
ngx_http_perstack_gateway_network_check(ngx_conf_t *cf,
    ngx_http_perstack_gateway_host_t *host, u_char *json)
{
    char                         *s;
    size_t                        i;
    yajl_val                      tree, internal, config, subnet, bridge, id;
    ngx_uint_t                    found;
    ngx_http_perstack_gateway_t  *gw;

    static const char  *id_path[] = { "Id", NULL };
    static const char  *bridge_path[] = { "Options",
                                          "com.docker.network.bridge.name",
                                          NULL };
    static const char  *internal_path[] = { "Internal", NULL };
    static const char  *config_path[] = { "IPAM", "Config", NULL };
    static const char  *subnet_path[] = { "Subnet", NULL };

    gw = host->gw;

    tree = ngx_http_perstack_json_tree(json, ngx_strlen(json), 0, NULL);
    if (tree == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "perstack gateway \"%V\": the Docker Engine's "
                           "description of the network \"%V\" is not JSON",
                           &gw->name, &gw->network);
        return NGX_ERROR;
    }

    /* the host's side: named by the network's option, else by its id */

    bridge = yajl_tree_get(tree, bridge_path, yajl_t_string);
    id = yajl_tree_get(tree, id_path, yajl_t_string);

    s = bridge ? bridge->u.string : (id ? id->u.string : NULL);

    if (s == NULL
        || (bridge ? ngx_strlen(s) == 0 || ngx_strlen(s) > 15
                   : ngx_strlen(s) < 12))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "perstack gateway \"%V\": cannot tell the host's "
                           "interface of the Docker network \"%V\"",
                           &gw->name, &gw->network);
        yajl_tree_free(tree);
        return NGX_ERROR;
    }

    gw->bridge.data = ngx_pnalloc(cf->pool, 16);
    if (gw->bridge.data == NULL) {
        yajl_tree_free(tree);
        return NGX_ERROR;
    }

    if (bridge) {
        gw->bridge.len = ngx_sprintf(gw->bridge.data, "%s", s)
                         - gw->bridge.data;

    } else {
        gw->bridge.len = ngx_sprintf(gw->bridge.data, "br-%*s", (size_t) 12,
                                     s)
                         - gw->bridge.data;
    }

    gw->bridge.data[gw->bridge.len] = '\0';

    internal = yajl_tree_get(tree, internal_path, yajl_t_any);

    if (internal == NULL || !YAJL_IS_TRUE(internal)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "perstack gateway \"%V\": the Docker network "
                           "\"%V\" exists but is not internal: its "
                           "containers could reach other hosts; remove it "
                           "and run \"%V\", or name another",
                           &gw->name, &gw->network, &host->setup);
        yajl_tree_free(tree);
        return NGX_ERROR;
    }

    found = 0;
    config = yajl_tree_get(tree, config_path, yajl_t_array);

    for (i = 0; config && i < YAJL_GET_ARRAY(config)->len; i++) {
        subnet = yajl_tree_get(YAJL_GET_ARRAY(config)->values[i],
                               subnet_path, yajl_t_string);

        /* yajl_tree_get() checked the type: u.string is set */
        s = subnet ? subnet->u.string : NULL;

        if (s && ngx_strlen(s) == gw->subnet.len
            && ngx_strncmp(s, gw->subnet.data, gw->subnet.len) == 0)
        {
            found = 1;
        }
    }

    yajl_tree_free(tree);

    if (!found) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "perstack gateway \"%V\": the Docker network "
                           "\"%V\" exists without the subnet %V, so the "
                           "gateway's address %V is not the host's in it; "
                           "remove it and run \"%V\", or name another",
                           &gw->name, &gw->network, &gw->subnet,
                           &gw->address, &host->setup);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * An internal network has no route to other hosts, but its containers
 * still reach the host itself, on every address it has (Docker's rules
 * only filter what the host forwards).  A chain of the gateway's, jumped
 * to for all input from the network's bridge, lets through only TCP to
 * the gateway's address on the ports nginx listens on there, and rejects
 * the rest: the gateway is the only door.  The network has no IPv6
 * subnet, but the host's link-local address on the bridge, and any other
 * IPv6 address it has, would still answer: an ip6tables chain of the same
 * name rejects all input from the bridge.  nginx reads both, and the
 * jumps, and refuses to start (or to reload) unless they are exactly so:
 * they follow the "listen" directives only when the operator runs the
 * command again.
 */

static ngx_int_t
ngx_http_perstack_gateway_firewall(ngx_conf_t *cf,
    ngx_http_perstack_gateway_host_t *host)
{
    u_char                        chain[32];
    ngx_file_info_t               fi;
    ngx_http_perstack_gateway_t  *gw;

    gw = host->gw;

    if (!gw->firewall) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "perstack gateway \"%V\": with \"firewall=off\", "
                           "the containers of the network \"%V\" reach every "
                           "address of this host: filter the IPv4 and IPv6 "
                           "input from \"%V\" yourself", &gw->name,
                           &gw->network, &gw->bridge);
        return NGX_OK;
    }

    ngx_sprintf(chain, "PERSTACK-%V%Z", &gw->bridge);

    if (host->ports.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "perstack gateway \"%V\": no server listens on "
                           "%V, the gateway's address: its containers reach "
                           "nothing", &gw->name, &gw->address);
    }

    if (ngx_http_perstack_gateway_chain(cf, host, 0, chain) != NGX_OK) {
        return NGX_ERROR;
    }

    /* a kernel without IPv6 has no address to reach over it */

    if (ngx_file_info((u_char *) NGX_HTTP_PERSTACK_IPV6_PROC, &fi)
        == NGX_FILE_ERROR
        && ngx_errno == NGX_ENOENT)
    {
        ngx_conf_log_error(NGX_LOG_NOTICE, cf, 0,
                           "perstack gateway \"%V\": IPv6 is not in this "
                           "host's kernel (no " NGX_HTTP_PERSTACK_IPV6_PROC
                           "), no ip6tables chain", &gw->name);
        return NGX_OK;
    }

    return ngx_http_perstack_gateway_chain(cf, host, 1, chain);
}


/*
 * One chain, of iptables or (v6) of ip6tables, as "-S" prints it: for
 * IPv4, an ACCEPT of TCP to the gateway's address for each port nginx
 * listens on there (in any order), then a REJECT; for IPv6, the REJECT
 * alone.  Nothing else, and the jump to it from INPUT for the bridge.
 */

#define NGX_HTTP_PERSTACK_CHAIN_OUTPUT  4096

static ngx_int_t
ngx_http_perstack_gateway_chain(ngx_conf_t *cf,
    ngx_http_perstack_gateway_host_t *host, ngx_uint_t v6, u_char *chain)
{
    char                         *prog;
    u_char                       *p, *last, *eol, *seen;
    size_t                        len;
    in_port_t                    *port;
    ngx_int_t                     rc;
    ngx_str_t                     out, line;
    ngx_uint_t                    k, n, accepted;
    ngx_http_perstack_gateway_t  *gw;
    u_char                        want[128];

    gw = host->gw;
    prog = v6 ? "ip6tables" : "iptables";

    out.data = ngx_pnalloc(cf->temp_pool, NGX_HTTP_PERSTACK_CHAIN_OUTPUT);
    seen = ngx_pcalloc(cf->temp_pool, host->ports.nelts + 1);
    if (out.data == NULL || seen == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_perstack_gateway_run(cf, prog, &out, "-S", chain, NULL);

    if (rc == 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "perstack gateway \"%V\": the %s chain \"%s\" "
                           "for the Docker network \"%V\" does not exist: "
                           "run \"%V\" as root before nginx starts",
                           &gw->name, prog, chain, &gw->network,
                           &host->setup);
        return NGX_ERROR;
    }

    if (rc != 0) {
        goto failed;
    }

    /* line by line: "-N chain", the ACCEPTs, the REJECT last */

    port = host->ports.elts;
    accepted = 0;
    n = 0;

    p = out.data;
    last = out.data + out.len;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        line.data = p;
        line.len = eol - p;
        p = eol + 1;

        if (n++ == 0) {
            len = ngx_sprintf(want, "-N %s", chain) - want;

        } else if (accepted < host->ports.nelts && !v6) {

            for (k = 0; k < host->ports.nelts; k++) {
                len = ngx_sprintf(want, "-A %s -d %V/32 -p tcp -m tcp "
                                  "--dport %d -j ACCEPT", chain,
                                  &gw->address, (int) port[k])
                      - want;

                if (!seen[k] && line.len == len
                    && ngx_strncmp(line.data, want, len) == 0)
                {
                    break;
                }
            }

            if (k == host->ports.nelts) {
                goto differs;
            }

            seen[k] = 1;
            accepted++;
            continue;

        } else if (n == accepted + 2) {
            len = ngx_sprintf(want, "-A %s -j REJECT --reject-with %s",
                              chain, v6 ? "icmp6-port-unreachable"
                                        : "icmp-port-unreachable")
                  - want;

        } else {
            goto differs;
        }

        if (line.len != len || ngx_strncmp(line.data, want, len) != 0) {
            goto differs;
        }
    }

    if (n != (v6 ? 0 : host->ports.nelts) + 2) {
        goto differs;
    }

    rc = ngx_http_perstack_gateway_run(cf, prog, NULL, "-C", "INPUT", "-i",
                                       gw->bridge.data, "-j", chain, NULL);

    if (rc == 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "perstack gateway \"%V\": the input from \"%V\" "
                           "does not jump to the %s chain \"%s\": run "
                           "\"%V\" as root before nginx starts",
                           &gw->name, &gw->bridge, prog, chain,
                           &host->setup);
        return NGX_ERROR;
    }

    if (rc != 0) {
        goto failed;
    }

    return NGX_OK;

differs:

    if (v6) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "perstack gateway \"%V\": the ip6tables chain "
                           "\"%s\" must reject all input, and only that: "
                           "run \"%V\" as root before nginx starts",
                           &gw->name, chain, &host->setup);

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "perstack gateway \"%V\": the iptables chain "
                           "\"%s\" must accept TCP to %V on the ports nginx "
                           "listens on there, then reject the rest, and "
                           "only that: run \"%V\" as root before nginx "
                           "starts",
                           &gw->name, chain, &gw->address, &host->setup);
    }

    return NGX_ERROR;

failed:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "perstack gateway \"%V\": cannot read the %s chain "
                       "\"%s\" on input from \"%V\" (%s exited with %i); "
                       "nginx must start as root with iptables and "
                       "ip6tables installed, or use \"firewall=off\" and "
                       "filter that input otherwise",
                       &gw->name, prog, chain, &gw->bridge, prog, rc);

    return NGX_ERROR;
}


/*
 * "iptables -w <args>" or "ip6tables -w <args>", waited for, to read only:
 * at configuration time, in the master.  Its exit status, or NGX_ERROR
 * when it could not run or did not exit.  With out, its standard output
 * (out->data holds NGX_HTTP_PERSTACK_CHAIN_OUTPUT bytes; more is left out,
 * and the chain differs then); its standard error goes to /dev/null: a
 * chain or a rule that is not there is no news, the status tells.
 */

static ngx_int_t
ngx_http_perstack_gateway_run(ngx_conf_t *cf, char *prog, ngx_str_t *out,
    ...)
{
    int                          status, fd[2];
    char                        *argv[24], *arg;
    pid_t                        pid;
    ssize_t                      n;
    va_list                      args;
    ngx_uint_t                   i;
    posix_spawn_file_actions_t   actions;
    u_char                       drain[512];

    static char  *envp[] = { "PATH=/usr/sbin:/sbin:/usr/bin:/bin", NULL };

    i = 0;
    argv[i++] = prog;
    argv[i++] = "-w";

    va_start(args, out);

    while ((arg = va_arg(args, char *)) != NULL && i < 23) {
        argv[i++] = arg;
    }

    va_end(args);

    argv[i] = NULL;

    fd[0] = -1;
    fd[1] = -1;

    if (out && pipe2(fd, O_CLOEXEC) == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "perstack gateway: pipe() failed");
        return NGX_ERROR;
    }

    if (posix_spawn_file_actions_init(&actions) != 0) {
        goto close;
    }

    (void) posix_spawn_file_actions_addopen(&actions, STDERR_FILENO,
                                            "/dev/null", O_WRONLY, 0);

    if (out) {
        (void) posix_spawn_file_actions_adddup2(&actions, fd[1],
                                                STDOUT_FILENO);

    } else {
        (void) posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO,
                                                "/dev/null", O_WRONLY, 0);
    }

    status = posix_spawnp(&pid, prog, &actions, NULL, argv, envp);

    posix_spawn_file_actions_destroy(&actions);

    if (status != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, status,
                           "perstack gateway: cannot run %s", prog);
        goto close;
    }

    if (out) {
        close(fd[1]);
        fd[1] = -1;

        out->len = 0;

        for ( ;; ) {
            if (out->len < NGX_HTTP_PERSTACK_CHAIN_OUTPUT) {
                n = read(fd[0], out->data + out->len,
                         NGX_HTTP_PERSTACK_CHAIN_OUTPUT - out->len);

            } else {
                /* too much to be the chain: read to the end, and drop */
                n = read(fd[0], drain, sizeof(drain));
            }

            if (n == -1 && ngx_errno == NGX_EINTR) {
                continue;
            }

            if (n <= 0) {
                break;
            }

            if (out->len < NGX_HTTP_PERSTACK_CHAIN_OUTPUT) {
                out->len += n;
            }
        }

        close(fd[0]);
        fd[0] = -1;

        /* the last line's end */
        if (out->len && out->data[out->len - 1] == '\n') {
            out->len--;
        }
    }

    while (waitpid(pid, &status, 0) == -1) {
        if (ngx_errno != NGX_EINTR) {
            return NGX_ERROR;
        }
    }

    return WIFEXITED(status) ? WEXITSTATUS(status) : NGX_ERROR;

close:

    if (fd[0] != -1) {
        close(fd[0]);
    }

    if (fd[1] != -1) {
        close(fd[1]);
    }

    return NGX_ERROR;
}


/*
 * The network's description, through the Engine API client's one blocking
 * call: the status, or 0 after logging why not.
 */

static long
ngx_http_perstack_gateway_engine(ngx_conf_t *cf,
    ngx_http_perstack_gateway_t *gw, u_char **response)
{
    u_char                  *p;
    ngx_http_perstack_op_t  *op;

    op = ngx_http_perstack_curl_op(cf->temp_pool, cf->log, NULL,
                                   "gateway network", NULL, NULL);
    if (op == NULL) {
        return 0;
    }

    op->response_max = NGX_HTTP_PERSTACK_NETWORK_RESPONSE;

    if (ngx_http_perstack_docker_network_now(gw->docker, op, &gw->network,
                                             10000)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "perstack gateway \"%V\": cannot reach the Docker "
                           "Engine at \"%V\" to check the network \"%V\": "
                           "%s", &gw->name, &gw->docker->name, &gw->network,
                           op->error[0] ? op->error
                                        : curl_easy_strerror(op->result));
        return 0;
    }

    /* the engine's message on one line */
    for (p = op->response; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }

    *response = op->response;

    return op->status;
}
