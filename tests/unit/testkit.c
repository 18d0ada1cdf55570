// testkit.c -- see testkit.h.
#include "testkit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/fs.h"

int
tk_tmpdir(char *dir, size_t n, const char *tag)
{
	int w = snprintf(dir, n, "/tmp/dre-test-%s-XXXXXX", tag);
	if (w < 0 || (size_t) w >= n)
		return -1;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

int
tk_rmtree(const char *path)
{
	return dre_rmtree(path) == 0 ? 0 : -1;
}

int
tk_broker_open(dre_bus_mock **mock, dre_kvlist *props)
{
	if (dre_bus_mock_open(mock, 1) != DRE_OK)
		return -1;
	dre_kvlist_set(
	    props, "bootstrap.servers", dre_bus_mock_bootstrap(*mock));
	return 0;
}

void
tk_broker_close(dre_bus_mock *mock, dre_kvlist *props)
{
	dre_kvlist_free(props);
	dre_bus_mock_close(mock);
}

int
tk_call(const dre_rpc_route *routes, void *svc, const char *method,
    const char *tenant, const char *body, const char *const *params,
    char **out)
{
	Dre__RpcRequest rq = DRE__RPC_REQUEST__INIT;
	Dre__Param      pv[8], *pp[8];
	char            kv[8][128];
	size_t          n = 0;
	for (; params != NULL && params[n] != NULL && n < 8; n++) {
		dre__param__init(&pv[n]);
		snprintf(kv[n], sizeof kv[n], "%s", params[n]);
		char *eq = strchr(kv[n], '=');
		if (eq == NULL)
			return -1;
		*eq = '\0';
		pv[n].key = kv[n];
		pv[n].value = eq + 1;
		pp[n] = &pv[n];
	}
	const dre_rpc_route *rt = routes;
	while (rt->method != NULL && strcmp(rt->method, method) != 0)
		rt++;
	if (rt->method == NULL)
		return -1;
	rq.method = (char *) method;
	rq.params = pp;
	rq.n_params = n;
	dre_rpc_call  c = { .method = method,
		 .tenant = tenant,
		 .principal = "test",
		 .body = (const uint8_t *) body,
		 .body_len = body != NULL ? strlen(body) : 0,
		 .req = &rq,
		 .on_worker = true };
	dre_rpc_reply rep = { .status = 200 };
	rt->fn(svc, &c, &rep);
	int status = rep.status;
	if ((status < 300 && status != 204
	        && (rep.content_type == NULL
	            || strcmp(rep.content_type, "application/json") != 0))
	    || (status >= 400 && rep.error_code == NULL))
		status = -1;
	if (out != NULL)
		*out = status >= 400
		    ? strdup(rep.error_target ? rep.error_target : "")
		    : strndup(
		        rep.body.data ? rep.body.data : "", rep.body.len);
	dre_buf_free(&rep.body);
	free(rep.error_message);
	free(rep.error_target);
	for (size_t i = 0; i < rep.ndetails; i++) {
		free(rep.details[i].message);
		free(rep.details[i].target);
	}
	for (size_t i = 0; i < rep.nheaders; i++)
		free(rep.headers[i].value);
	return status;
}
