/* SPDX-License-Identifier: MIT */
/*
 * broker/bells.c over a broker built in memory, for bells_test.cpp (the
 * broker's headers are C11 only). Stand-in queues of given users join and
 * leave one poller's bells; the control thread's calls, made here.
 */
#ifndef ONERING_TESTS_BELLS_SUPPORT_H
#define ONERING_TESTS_BELLS_SUPPORT_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bt;

/* A broker with one poller whose bells table holds max_pages pages. */
struct bt *bt_new(unsigned max_pages);
void bt_free(struct bt *t);
/* A stand-in queue of user uid joins, of a client that rings the summary
 * (ABI 1.9) or not: its handle (>= 0), its page (the page's index in the
 * poller's table) and bit, or -errno. */
int bt_join(struct bt *t, uint32_t uid, bool summary, unsigned *page, uint32_t *bit);
/* Whether page i is a summary page. */
bool bt_summary(struct bt *t, unsigned i);
/* Queue h leaves (after its grace period, as teardown does). */
void bt_leave(struct bt *t, int h);
/* Pages in the poller's table, as the poller would count them. */
unsigned bt_pages(struct bt *t);
/* The words the poller looks at in page i (nr_words). */
uint32_t bt_words(struct bt *t, unsigned i);
/* The queue a bit of page i names, as the poller finds it: the handle, or -1. */
int bt_queue_at(struct bt *t, unsigned i, uint32_t bit);
/* The page's memfd (what the client maps). */
int bt_page_fd(struct bt *t, unsigned i);

#ifdef __cplusplus
}
#endif

#endif
