// testkit.c -- see testkit.h.
#include "testkit.h"

#include <stdio.h>
#include <stdlib.h>

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
