
/*
 * Model files at configuration time: run FILE.lua in a throw-away LuaJIT
 * state with a restricted environment and turn the description it
 * returns into an lt_model_spec.
 */


#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* dladdr() */
#endif

#include <dlfcn.h>

#include "ngx_http_learn_lua.h"


/*
 * Everything that touches the Lua state runs inside one lua_cpcall():
 * LuaJIT panics (and exits the nginx master, taking a running server down
 * on reload) on any error raised outside protected mode, and reading the
 * table a model file returns can raise.
 */
typedef struct {
    ngx_http_learn_main_conf_t  *lmcf;
    ngx_http_learn_sandbox_t    *sb;
    lt_model_spec               *spec;
    ngx_uint_t                   named;     /* the error names the file */
    char                         src[LUA_IDSIZE]; /* Lua's name for it */
} ngx_http_learn_lua_load_t;


static ngx_int_t ngx_http_learn_lua_resolve(ngx_conf_t *cf,
    ngx_http_learn_main_conf_t *lmcf, ngx_str_t *file, ngx_str_t *path);
static int ngx_http_learn_lua_run(lua_State *L);
static ngx_int_t ngx_http_learn_lua_paths(ngx_conf_t *cf,
    ngx_http_learn_main_conf_t *lmcf, ngx_http_learn_sandbox_t *sb);


ngx_int_t
ngx_http_learn_lua_load_model(ngx_conf_t *cf,
    ngx_http_learn_main_conf_t *lmcf, ngx_str_t *file, lt_model_spec *spec)
{
    size_t                      len;
    u_char                      buf[64];
    lt_err                      err;
    lt_model                   *m;
    ngx_str_t                   path;
    lua_State                  *L;
    const char                 *msg;
    ngx_http_learn_sandbox_t    sb;
    ngx_http_learn_lua_load_t   ld;

    if (ngx_http_learn_lua_resolve(cf, lmcf, file, &path) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&sb, sizeof(ngx_http_learn_sandbox_t));
    sb.path = path.data;

    if (ngx_http_learn_lua_paths(cf, lmcf, &sb) != NGX_OK) {
        return NGX_ERROR;
    }

    L = ngx_http_learn_sandbox_new(&sb);
    if (L == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "lua_newstate() failed");
        return NGX_ERROR;
    }

    ngx_memzero(&ld, sizeof(ngx_http_learn_lua_load_t));
    ld.lmcf = lmcf;
    ld.sb = &sb;
    ld.spec = spec;

    if (lua_cpcall(L, ngx_http_learn_lua_run, &ld) != 0) {
        if (sb.exhausted) {
            /* the error raised may be any file's: the limit is the news */
            if (sb.line > 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "learn_model: %s:%i: the model file %s",
                                   path.data, sb.line, sb.limit);

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "learn_model: %s: the model file %s",
                                   path.data, sb.limit);
            }

            lua_close(L);
            return NGX_ERROR;
        }

        msg = lua_tostring(L, -1);

        if (msg == NULL) {
            ngx_snprintf(buf, sizeof(buf), "(error object is a %s value)%Z",
                         luaL_typename(L, -1));
            msg = (const char *) buf;
        }

        /*
         * Lua's own messages read "FILE:LINE: reason" when the error was
         * raised at a line of the file.  The others name the file too:
         * with the last line the file ran when the error came while it
         * ran (nn.model{} in "return nn.model{...}" is a tail call, so
         * error(msg, 2) there has no caller line to name), else alone.
         */

        len = ngx_strlen(ld.src);

        if (ld.named
            || (len && ngx_strncmp(msg, ld.src, len) == 0 && msg[len] == ':'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "learn_model: %s", msg);

        } else if (sb.running && sb.line > 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "learn_model: %s:%i: %s",
                               path.data, sb.line, msg);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "learn_model: %s: %s",
                               path.data, msg);
        }

        lua_close(L);
        return NGX_ERROR;
    }

    lua_close(L);

    /* the C checks (sizes above all), reported with the file name here */

    m = ngx_palloc(cf->temp_pool, sizeof(lt_model));
    if (m == NULL) {
        return NGX_ERROR;
    }

    if (lt_model_build(m, spec, &err) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "learn_model: %s: %s",
                           path.data, err.msg);
        return NGX_ERROR;
    }

    *file = path;

    return NGX_OK;
}


/*
 * Under lua_cpcall(): every error raised here or in the model file ends
 * the call with the message on the stack.
 */

static int
ngx_http_learn_lua_run(lua_State *L)
{
    lua_Debug                   ar;
    ngx_http_learn_lua_load_t  *ld;

    ld = lua_touserdata(L, 1);
    lua_settop(L, 0);

    ngx_http_learn_sandbox_open(L);
    ngx_http_learn_sandbox_limits(L, 1);

    if (ngx_http_learn_sandbox_load(L, ld->sb->path) != 0) {
        /* "FILE:LINE: syntax error" or "cannot open FILE" */
        ld->named = 1;
        return lua_error(L);
    }

    lua_pushvalue(L, -1);
    if (lua_getinfo(L, ">S", &ar) != 0) {
        ngx_cpystrn((u_char *) ld->src, (u_char *) ar.short_src,
                    sizeof(ld->src));
    }

    ngx_http_learn_sandbox_env(L);
    lua_setfenv(L, -2);

    ld->sb->running = 1;
    lua_call(L, 0, 1);
    ld->sb->running = 0;

    ngx_http_learn_lua_spec(L, lua_gettop(L), ld->spec);

    ngx_http_learn_sandbox_limits(L, 0);

    return 0;
}


/*
 * An absolute FILE is used as it is; a relative one is looked up next
 * to nginx.conf, then under the prefix, then in the module's lua/
 * directory, so "models/xor.lua" finds the examples shipped with it.
 */

static ngx_int_t
ngx_http_learn_lua_resolve(ngx_conf_t *cf, ngx_http_learn_main_conf_t *lmcf,
    ngx_str_t *file, ngx_str_t *path)
{
    u_char           *p;
    ngx_uint_t        i, n;
    ngx_str_t         cand[3];
    ngx_file_info_t   fi;

    for (i = 0; i < 2; i++) {
        cand[i] = *file;

        if (ngx_conf_full_name(cf->cycle, &cand[i], i == 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_learn_lua_find_dir(cf, &lmcf->lua_dir) != NGX_OK) {
        return NGX_ERROR;
    }

    n = 2;

    if (lmcf->lua_dir.len) {
        cand[2].len = lmcf->lua_dir.len + 1 + file->len;
        cand[2].data = ngx_pnalloc(cf->pool, cand[2].len);
        if (cand[2].data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(cand[2].data, "%V/%V", &lmcf->lua_dir, file);
        n = 3;
    }

    for (i = 0; i < n; i++) {
        p = ngx_pnalloc(cf->pool, cand[i].len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, cand[i].data, cand[i].len);
        p[cand[i].len] = '\0';

        if (ngx_file_info(p, &fi) != NGX_FILE_ERROR && ngx_is_file(&fi)) {
            path->data = p;
            path->len = cand[i].len;
            return NGX_OK;
        }

        if (file->data[0] == '/') {
            break;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                       "model file \"%V\" not found (looked in the conf "
                       "directory, the prefix and \"%V\")",
                       file, &lmcf->lua_dir);

    return NGX_ERROR;
}


/*
 * The module's own lua/ directory: two levels up from the loaded .so
 * (build/ngx_http_learn_module.so in the repository).  Left empty when
 * there is none; learn_lua_path then has to provide learn.*.
 */

ngx_int_t
ngx_http_learn_lua_find_dir(ngx_conf_t *cf, ngx_str_t *dir)
{
    u_char           *last;
    ngx_int_t         rc;
    ngx_str_t         so;
    ngx_file_info_t   fi;

    if (dir->len) {
        return NGX_OK;
    }

    rc = ngx_http_learn_module_dir(cf, &so, sizeof("/lua"));
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* the .so is in build/: lua/ is next to that */
    last = (rc == NGX_OK) ? (u_char *) strrchr((char *) so.data, '/') : NULL;

    if (last != NULL) {
        last = ngx_cpymem(last, "/lua", sizeof("/lua") - 1);
        *last = '\0';

        if (ngx_file_info(so.data, &fi) != NGX_FILE_ERROR && ngx_is_dir(&fi)) {
            dir->data = so.data;
            dir->len = last - so.data;
            return NGX_OK;
        }
    }

    /* installed elsewhere: learn_lua_path must name the lua/ directory */
    return NGX_OK;
}


/*
 * The directory of the loaded module file (dladdr), NUL-terminated, with
 * room for reserve more bytes; NGX_DECLINED when it is not known.
 */

ngx_int_t
ngx_http_learn_module_dir(ngx_conf_t *cf, ngx_str_t *dir, size_t reserve)
{
    u_char   *p, *slash;
    size_t    len;
    Dl_info   info;

    if (dladdr((void *) &ngx_http_learn_module, &info) == 0
        || info.dli_fname == NULL || info.dli_fname[0] != '/')
    {
        return NGX_DECLINED;
    }

    len = ngx_strlen(info.dli_fname);

    p = ngx_pnalloc(cf->pool, len + 1 + reserve);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, info.dli_fname, len + 1);

    slash = (u_char *) strrchr((char *) p, '/');
    *slash = '\0';

    dir->data = p;
    dir->len = slash - p;

    return NGX_OK;
}


/*
 * require() templates: the module's lua/ directory, then each
 * learn_lua_path entry (";"-separated "DIR/?.lua" templates, as in
 * package.path).
 */

static ngx_int_t
ngx_http_learn_lua_paths(ngx_conf_t *cf, ngx_http_learn_main_conf_t *lmcf,
    ngx_http_learn_sandbox_t *sb)
{
    u_char      *p, *start, *end, **t;
    ngx_str_t   *extra;
    ngx_uint_t   i, n;

    n = 2;

    if (lmcf->lua_paths != NGX_CONF_UNSET_PTR && lmcf->lua_paths != NULL) {
        extra = lmcf->lua_paths->elts;

        for (i = 0; i < lmcf->lua_paths->nelts; i++) {
            n++;

            for (p = extra[i].data; p < extra[i].data + extra[i].len; p++) {
                n += (*p == ';');
            }
        }

    } else {
        extra = NULL;
    }

    t = ngx_pcalloc(cf->temp_pool, n * sizeof(u_char *));
    if (t == NULL) {
        return NGX_ERROR;
    }

    sb->paths = t;
    sb->npaths = 0;

    if (lmcf->lua_dir.len) {
        t[sb->npaths] = ngx_pnalloc(cf->temp_pool,
                                    lmcf->lua_dir.len + sizeof("/?.lua"));
        if (t[sb->npaths] == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(t[sb->npaths++], "%V/?.lua%Z", &lmcf->lua_dir);

        t[sb->npaths] = ngx_pnalloc(cf->temp_pool,
                                    lmcf->lua_dir.len + sizeof("/?/init.lua"));
        if (t[sb->npaths] == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(t[sb->npaths++], "%V/?/init.lua%Z", &lmcf->lua_dir);
    }

    if (extra == NULL) {
        return NGX_OK;
    }

    for (i = 0; i < lmcf->lua_paths->nelts; i++) {
        start = extra[i].data;
        end = extra[i].data + extra[i].len;

        while (start < end) {
            p = ngx_strlchr(start, end, ';');
            if (p == NULL) {
                p = end;
            }

            if (p > start) {
                t[sb->npaths] = ngx_pnalloc(cf->temp_pool, p - start + 1);
                if (t[sb->npaths] == NULL) {
                    return NGX_ERROR;
                }

                *ngx_cpymem(t[sb->npaths], start, p - start) = '\0';
                sb->npaths++;
            }

            start = p + 1;
        }
    }

    return NGX_OK;
}
