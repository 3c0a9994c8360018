/*
 * LD_PRELOAD shim for DPDK tools that take no EAL arguments (dpdk-dumpcap 22.11 builds its own
 * argument list: --proc-type=secondary, --file-prefix, a log level). It appends --no-pci to the
 * arguments rte_eal_init receives, so the tool never scans or probes the PCI bus: for lab
 * machines whose only PCI network device must stay with the kernel. Used by
 * scripts/dumpcap-nopci.sh; a real appliance does not need it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int rte_eal_init(int argc, char **argv)
{
	static char *args[256];
	static char no_pci[] = "--no-pci";
	int (*real)(int, char **) = (int (*)(int, char **))dlsym(RTLD_NEXT, "rte_eal_init");

	/* Never fall through to an EAL start without --no-pci. */
	if (real == NULL || argc < 1 || argc > 250)
		abort();
	for (int i = 0; i < argc; i++)
		args[i] = argv[i];
	args[argc] = no_pci;
	args[argc + 1] = NULL;
	fprintf(stderr, "nopci-preload: EAL started with --no-pci\n");
	return real(argc + 1, args);
}
