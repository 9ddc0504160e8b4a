/* SPDX-License-Identifier: MIT */
/*
 * Requests: what a client asks through a submission ring, and who does it
 * (request.c). The submission source copies each request out of client
 * memory and hands it here; a request on a subscription homed on another
 * poller goes there by lane and comes back in through
 * broker_request_apply on that poller.
 *
 * Context: a poller's thread, inside its RCU read side.
 */
#ifndef ONERING_BROKER_REQUEST_H
#define ONERING_BROKER_REQUEST_H

#include <stdint.h>

struct broker_queue;
struct broker_sub;
struct onering_request;
struct poller;

/* One request, already copied out of q's submission ring. 0 done,
 * -EAGAIN not now (it stays in the ring; back-pressure), -EPROTO the client
 * broke the protocol (the caller faults q). */
int broker_request_handle(struct poller *p, struct broker_queue *q,
			  const struct onering_request *req, uint64_t ts);

/* How many of the n requests from reqs on form one run of posts: the same
 * group and the same valid flags as the first, which is a POST (0 if it is
 * not one, or its flags are not valid: handle it alone). */
unsigned broker_request_post_run(const struct onering_request *reqs, unsigned n);

/* A run of n posts (broker_request_post_run), already copied out of q's
 * submission ring: the group looked up and the permission checked once,
 * the records handed to deliver as one burst. Returns how many were done
 * (placed, waiting in the backlog, or refused with a POST_REFUSED record);
 * fewer than n: the rest stay in the ring (back-pressure). */
unsigned broker_request_posts(struct poller *p, struct broker_queue *q,
			      const struct onering_request *reqs, unsigned n, uint64_t ts);

/* A request on a subscription homed on p (local, or forwarded by lane),
 * which came on q. 0, or -EPROTO. */
/* s is deleted, on its home poller p: no record of it is made any more;
 * the control thread unpublishes it, closes its fd and frees it after a
 * grace period. */
void broker_sub_delete(struct poller *p, struct broker_sub *s);

int broker_request_apply(struct poller *p, struct broker_queue *q,
			 const struct onering_request *req);

#endif /* ONERING_BROKER_REQUEST_H */
