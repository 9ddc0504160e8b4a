/* SPDX-License-Identifier: MIT */
/*
 * broker/nic.h (and broker/telemetry.h) for targets built without DPDK: a
 * broker with no NIC.
 *
 * broker/nic.c needs DPDK's compile flags and libraries, which a fuzz
 * target does not carry (and the control handlers reach the NIC only
 * through this header). Every function answers as nic.c does when the EAL
 * was never started (b->nic == NULL): nothing to set up, no port, no
 * stats item, -ENODEV for a frame to transmit.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/nic.h"
#include "broker/telemetry.h"
#include "broker/source.h"

int broker_nic_init(struct broker *b)
{
	(void)b;
	return 0; /* no EAL arguments, no --port: nothing to start */
}

int broker_nic_setup(struct broker *b)
{
	(void)b;
	return 0;
}

void broker_nic_fini(struct broker *b)
{
	(void)b;
}

int broker_source_nic_create(struct poller *p, struct broker_source **out)
{
	(void)p;
	*out = NULL; /* no EAL: no rx queue on any poller */
	return 0;
}

int broker_nic_stats(struct broker *b, int (*send)(void *ctx, const struct onering_msg *m),
		     void *ctx, uint32_t seq)
{
	(void)b;
	(void)send;
	(void)ctx;
	(void)seq;
	return 0; /* no port, no rx queue: no item */
}

int broker_nic_inject(struct broker *b, uint16_t port, const void *frame, uint32_t len)
{
	(void)b;
	(void)port;
	(void)frame;
	(void)len;
	return -ENODEV;
}

bool broker_nic_active(const struct broker *b)
{
	(void)b;
	return false;
}

void broker_telemetry_fini(struct broker *b)
{
	(void)b; /* no EAL: no telemetry command was ever registered */
}
