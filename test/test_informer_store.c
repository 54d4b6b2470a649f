/*
 * test/test_informer_store.c - the relist diff store (informer/store.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "informer/store.h"

struct gone {
	char names[64][64];
	size_t n;
};

static void on_gone(void *arg, const char *ns, const char *name)
{
	struct gone *g = arg;

	assert_true(g->n < 64);
	snprintf(g->names[g->n++], sizeof(g->names[0]), "%s/%s", ns ? ns : "-", name);
}

static bool has(const struct gone *g, const char *s)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (!strcmp(g->names[i], s))
			return true;
	return false;
}

static void store_relist_reports_only_changes_and_deletions(void **state)
{
	struct informer_store s;
	struct gone g = { 0 };

	(void)state;
	informer_store_init(&s);
	informer_store_begin(&s);
	assert_int_equal(informer_store_upsert(&s, "shop", "web", "10", "u1"), 1);
	assert_int_equal(informer_store_upsert(&s, "shop", "cart", "11", "u2"), 1);
	assert_int_equal(informer_store_upsert(&s, "default", "kubernetes", "5", "u3"), 1);
	assert_int_equal(informer_store_sweep(&s, on_gone, &g), 0);
	assert_int_equal(informer_store_count(&s), 3);

	/* a relist: web unchanged, cart changed, kubernetes gone, api new */
	informer_store_begin(&s);
	assert_int_equal(informer_store_upsert(&s, "shop", "web", "10", "u1"), 0);
	assert_int_equal(informer_store_upsert(&s, "shop", "cart", "12", "u2"), 1);
	assert_int_equal(informer_store_upsert(&s, "shop", "api", "13", "u4"), 1);
	assert_int_equal(informer_store_sweep(&s, on_gone, &g), 1);
	assert_true(has(&g, "default/kubernetes"));
	assert_int_equal(informer_store_count(&s), 3);
	assert_string_equal(informer_store_rv(&s, "shop", "cart"), "12");
	assert_null(informer_store_rv(&s, "default", "kubernetes"));
	informer_store_cleanup(&s);
}

static void store_recreated_object_with_new_uid_is_a_change(void **state)
{
	struct informer_store s;

	(void)state;
	informer_store_init(&s);
	assert_int_equal(informer_store_upsert(&s, "a", "b", "1", "u1"), 1);
	assert_int_equal(informer_store_upsert(&s, "a", "b", "1", "u2"), 1);
	assert_int_equal(informer_store_upsert(&s, "a", "b", "1", "u2"), 0);
	assert_int_equal(informer_store_upsert(&s, "a", "b", NULL, NULL), 1);
	assert_int_equal(informer_store_upsert(&s, "a", "b", NULL, NULL), 0);
	informer_store_cleanup(&s);
}

static void store_keep_and_remove(void **state)
{
	struct informer_store s;
	struct gone g = { 0 };

	(void)state;
	informer_store_init(&s);
	assert_false(informer_store_remove(&s, "x", "y"));
	assert_false(informer_store_keep(&s, "x", "y"));
	assert_int_equal(informer_store_upsert(&s, NULL, "node-a", "1", NULL), 1);
	assert_int_equal(informer_store_upsert(&s, "x", "y", "2", NULL), 1);
	informer_store_begin(&s);
	assert_true(informer_store_keep(&s, NULL, "node-a"));
	assert_int_equal(informer_store_sweep(&s, on_gone, &g), 1);
	assert_true(has(&g, "x/y"));
	assert_true(informer_store_remove(&s, NULL, "node-a"));
	assert_false(informer_store_remove(&s, NULL, "node-a"));
	assert_int_equal(informer_store_count(&s), 0);
	informer_store_cleanup(&s);
}

static void store_keys_do_not_collide(void **state)
{
	struct informer_store s;

	(void)state;
	informer_store_init(&s);
	assert_int_equal(informer_store_upsert(&s, "ab", "c", "1", NULL), 1);
	assert_int_equal(informer_store_upsert(&s, "a", "bc", "2", NULL), 1);
	assert_string_equal(informer_store_rv(&s, "ab", "c"), "1");
	assert_string_equal(informer_store_rv(&s, "a", "bc"), "2");
	informer_store_cleanup(&s);
}

static void store_many_objects_grow_and_sweep(void **state)
{
	struct informer_store s;
	char name[32], rv[32];
	size_t i;

	(void)state;
	informer_store_init(&s);
	informer_store_begin(&s);
	for (i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "svc-%zu", i);
		snprintf(rv, sizeof(rv), "%zu", i);
		assert_int_equal(informer_store_upsert(&s, "ns", name, rv, NULL), 1);
	}
	assert_int_equal(informer_store_count(&s), 20000);
	informer_store_begin(&s);
	for (i = 0; i < 20000; i += 2) {
		snprintf(name, sizeof(name), "svc-%zu", i);
		snprintf(rv, sizeof(rv), "%zu", i);
		assert_int_equal(informer_store_upsert(&s, "ns", name, rv, NULL), 0);
	}
	assert_int_equal(informer_store_sweep(&s, NULL, NULL), 10000);
	assert_int_equal(informer_store_count(&s), 10000);
	assert_null(informer_store_rv(&s, "ns", "svc-1"));
	assert_string_equal(informer_store_rv(&s, "ns", "svc-2"), "2");
	informer_store_cleanup(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(store_relist_reports_only_changes_and_deletions),
		cmocka_unit_test(store_recreated_object_with_new_uid_is_a_change),
		cmocka_unit_test(store_keep_and_remove),
		cmocka_unit_test(store_keys_do_not_collide),
		cmocka_unit_test(store_many_objects_grow_and_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
