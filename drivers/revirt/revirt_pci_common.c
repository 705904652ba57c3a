// SPDX-License-Identifier: GPL-2.0-only
/*
 * revirt PCI transport: the PCI driver "revirt-pci" and what the legacy
 * and modern layouts share (interrupts and virtqueue setup).
 *
 * Interrupts are tried in this order: MSI-X with a vector for config
 * changes and one per queue, MSI-X with one vector for config and one
 * shared by all queues, then legacy INTx reading the ISR register.
 *
 * The module has no PCI device table alias on purpose: it must not race
 * the kernel's own virtio-pci for devices at boot.  It drives the virtio
 * functions present when it loads that no other driver has, and takes
 * others over through driver_override.
 */

#include <linux/module.h>
#include <linux/slab.h>

#include "revirt_pci.h"

#define REVIRT_PCI_VENDOR		0x1af4
#define REVIRT_PCI_FIRST_DEVICE		0x1000
#define REVIRT_PCI_LAST_TRANSITIONAL	0x103f
#define REVIRT_PCI_FIRST_MODERN		0x1040
#define REVIRT_PCI_LAST_DEVICE		0x107f

/**
 * revirt_pci_notify - kick a queue
 * @vq: the virtqueue
 *
 * Return: true (a PCI device cannot tell us it is gone here).
 */
bool revirt_pci_notify(struct revirt_virtqueue *vq)
{
	struct revirt_pci_vq *pvq = vq->priv;

	iowrite16(vq->index, pvq->notify_addr);
	return true;
}

/**
 * revirt_pci_synchronize_irqs - wait for running interrupt handlers
 * @rvp: the device
 *
 * Called after a reset, so that no callback runs once it returned.
 */
void revirt_pci_synchronize_irqs(struct revirt_pci_device *rvp)
{
	unsigned int i;

	if (rvp->irq_mode == REVIRT_PCI_INTX)
		synchronize_irq(rvp->pdev->irq);
	for (i = 0; i < rvp->nvectors; i++)
		synchronize_irq(pci_irq_vector(rvp->pdev, i));
}

/**
 * revirt_pci_synchronize_vq_irq - wait for the handler of one queue
 * @rvp: the device
 * @pvq: the queue, after its reset alone
 *
 * Where the queue shares its interrupt, every handler is waited for.
 */
void revirt_pci_synchronize_vq_irq(struct revirt_pci_device *rvp,
				   struct revirt_pci_vq *pvq)
{
	if (rvp->irq_mode == REVIRT_PCI_MSIX_PER_VQ &&
	    pvq->vector != VIRTIO_MSI_NO_VECTOR)
		synchronize_irq(pci_irq_vector(rvp->pdev, pvq->vector));
	else
		revirt_pci_synchronize_irqs(rvp);
}

/**
 * revirt_pci_max_vq_size - the most entries a queue may have
 * @vq: the virtqueue
 *
 * Return: the size the device offered for it at setup (a power of two).
 */
unsigned int revirt_pci_max_vq_size(struct revirt_virtqueue *vq)
{
	return ((struct revirt_pci_vq *)vq->priv)->max_num;
}

/**
 * revirt_pci_gone - report the function gone if a register says so
 * @rvp: the device
 * @val: what a read of the register returned
 * @ones: the register's all-ones value, which the device cannot hold
 * @reg: the register's name, for the message
 *
 * A removed function, or one whose memory decoding was turned off, reads
 * all-ones everywhere.  The core is told once (revirt_device_gone()).  So
 * does a function whose channel an error froze, until the error recovery
 * resets its link: that one is not gone (revirt_pci_error_detected()).
 *
 * Return: true if the device is gone.
 */
bool revirt_pci_gone(struct revirt_pci_device *rvp, u32 val, u32 ones,
		     const char *reg)
{
	char why[64];

	if (val != ones || pci_channel_offline(rvp->pdev))
		return false;
	snprintf(why, sizeof(why), "%s reads 0x%x", reg, val);
	revirt_device_gone(&rvp->vdev, why);
	return true;
}

/**
 * revirt_pci_unreachable - report the function gone if nothing answers
 * @rvp: the device
 *
 * A function the bus lost (pci_device_is_present()), or whose decoding of
 * the BARs the transport maps was turned off behind the driver's back,
 * answers no register read: the values read, all-ones on real hardware,
 * zeroes in QEMU, cannot be trusted.  Only config space is read, which a
 * host bridge answers in any context.
 *
 * Return: true if the device is gone.
 */
bool revirt_pci_unreachable(struct revirt_pci_device *rvp)
{
	struct pci_dev *pdev = rvp->pdev;
	char why[64];
	u16 cmd;

	if (pci_channel_offline(pdev))
		return false;
	if (!pci_device_is_present(pdev)) {
		revirt_device_gone(&rvp->vdev, "no longer present on the PCI bus");
		return true;
	}
	pci_read_config_word(pdev, PCI_COMMAND, &cmd);
	if (cmd & rvp->layout->decode)
		return false;
	snprintf(why, sizeof(why), "%s decoding off, PCI COMMAND 0x%04x",
		 rvp->layout->decode == PCI_COMMAND_IO ? "I/O" : "memory", cmd);
	revirt_device_gone(&rvp->vdev, why);
	return true;
}

static irqreturn_t revirt_pci_config_irq(int irq, void *data)
{
	struct revirt_pci_device *rvp = data;

	revirt_config_changed(&rvp->vdev);
	return IRQ_HANDLED;
}

static irqreturn_t revirt_pci_vqs_irq(int irq, void *data)
{
	struct revirt_pci_device *rvp = data;
	irqreturn_t ret = IRQ_NONE;
	unsigned int i;

	for (i = 0; i < rvp->nvqs; i++)
		if (rvp->vqs[i].vq &&
		    revirt_vring_interrupt(irq, rvp->vqs[i].vq) == IRQ_HANDLED)
			ret = IRQ_HANDLED;
	return ret;
}

static irqreturn_t revirt_pci_intx_irq(int irq, void *data)
{
	struct revirt_pci_device *rvp = data;
	u8 isr;

	/* Reading the ISR acknowledges the interrupt. */
	isr = ioread8(rvp->layout->isr(rvp));
	/* Only bits 0 and 1 exist: all-ones is a function that is gone. */
	if (!isr || revirt_pci_gone(rvp, isr, 0xff, "ISR"))
		return IRQ_NONE;
	if (isr & VIRTIO_PCI_ISR_CONFIG)
		revirt_config_changed(&rvp->vdev);
	revirt_pci_vqs_irq(irq, rvp);
	return IRQ_HANDLED;
}

static void revirt_pci_free_irqs(struct revirt_pci_device *rvp)
{
	struct pci_dev *pdev = rvp->pdev;
	unsigned int i;

	switch (rvp->irq_mode) {
	case REVIRT_PCI_MSIX_PER_VQ:
		for (i = 0; i < rvp->nvqs; i++)
			if (rvp->vqs[i].vector != VIRTIO_MSI_NO_VECTOR &&
			    rvp->vqs[i].vq)
				free_irq(pci_irq_vector(pdev, rvp->vqs[i].vector),
					 rvp->vqs[i].vq);
		fallthrough;
	case REVIRT_PCI_MSIX_SHARED:
		rvp->layout->set_config_vector(rvp, VIRTIO_MSI_NO_VECTOR);
		free_irq(pci_irq_vector(pdev, 0), rvp);
		if (rvp->irq_mode == REVIRT_PCI_MSIX_SHARED)
			free_irq(pci_irq_vector(pdev, 1), rvp);
		pci_free_irq_vectors(pdev);
		break;
	case REVIRT_PCI_INTX:
		free_irq(pdev->irq, rvp);
		break;
	case REVIRT_PCI_IRQ_NONE:
		break;
	}
	rvp->irq_mode = REVIRT_PCI_IRQ_NONE;
	rvp->nvectors = 0;
}

/* Vectors: config, then per-queue ones or one shared by the queues. */
static int revirt_pci_request_msix(struct revirt_pci_device *rvp,
				   enum revirt_pci_irq_mode mode,
				   unsigned int nvectors)
{
	struct pci_dev *pdev = rvp->pdev;
	int err;

	err = pci_alloc_irq_vectors(pdev, nvectors, nvectors, PCI_IRQ_MSIX);
	if (err < 0)
		return err;
	rvp->nvectors = nvectors;

	snprintf(rvp->config_irq_name, sizeof(rvp->config_irq_name),
		 "%s-config", dev_name(&rvp->vdev.dev));
	err = request_irq(pci_irq_vector(pdev, 0), revirt_pci_config_irq, 0,
			  rvp->config_irq_name, rvp);
	if (err)
		goto free_vectors;
	if (rvp->layout->set_config_vector(rvp, 0) == VIRTIO_MSI_NO_VECTOR) {
		err = -EBUSY;
		goto free_config;
	}
	if (mode == REVIRT_PCI_MSIX_SHARED) {
		snprintf(rvp->vqs_irq_name, sizeof(rvp->vqs_irq_name),
			 "%s-virtqueues", dev_name(&rvp->vdev.dev));
		err = request_irq(pci_irq_vector(pdev, 1), revirt_pci_vqs_irq,
				  0, rvp->vqs_irq_name, rvp);
		if (err)
			goto unroute_config;
	}
	rvp->irq_mode = mode;
	return 0;

unroute_config:
	rvp->layout->set_config_vector(rvp, VIRTIO_MSI_NO_VECTOR);
free_config:
	free_irq(pci_irq_vector(pdev, 0), rvp);
free_vectors:
	pci_free_irq_vectors(pdev);
	rvp->nvectors = 0;
	return err;
}

static int revirt_pci_request_irqs(struct revirt_pci_device *rvp,
				   enum revirt_pci_irq_mode mode,
				   unsigned int nvectors)
{
	int err;

	if (mode != REVIRT_PCI_INTX)
		return revirt_pci_request_msix(rvp, mode, nvectors);

	err = request_irq(rvp->pdev->irq, revirt_pci_intx_irq, IRQF_SHARED,
			  dev_name(&rvp->vdev.dev), rvp);
	if (!err)
		rvp->irq_mode = mode;
	return err;
}

static u16 revirt_pci_vq_vector(enum revirt_pci_irq_mode mode,
				const struct revirt_vq_info *info,
				unsigned int *next_vector)
{
	if (!info->callback || mode == REVIRT_PCI_INTX)
		return VIRTIO_MSI_NO_VECTOR;
	if (mode == REVIRT_PCI_MSIX_SHARED)
		return 1;
	return (*next_vector)++;
}

static int revirt_pci_setup_vq(struct revirt_pci_device *rvp,
			       unsigned int index,
			       const struct revirt_vq_info *info, u16 vector)
{
	struct revirt_device *vdev = &rvp->vdev;
	struct revirt_pci_vq *pvq = &rvp->vqs[index];
	unsigned int num = rvp->layout->queue_size(rvp, index);
	struct revirt_virtqueue *vq;
	bool own_irq;
	int err;

	if (!num)
		return -ENOENT;
	vq = revirt_create_vq(vdev, index, num, rvp->layout->vring_align,
			      &rvp->pdev->dev, revirt_pci_notify, info);
	if (IS_ERR(vq))
		return PTR_ERR(vq);
	vq->priv = pvq;
	pvq->vq = vq;
	pvq->vector = vector;
	pvq->max_num = num;

	/*
	 * The queue's own interrupt before the queue goes live: releasing a
	 * live legacy queue resets the whole device (QEMU takes a queue
	 * address of 0 for a reset), and this failure needs no release.
	 */
	own_irq = rvp->irq_mode == REVIRT_PCI_MSIX_PER_VQ &&
		  vector != VIRTIO_MSI_NO_VECTOR;
	if (own_irq) {
		snprintf(pvq->irq_name, sizeof(pvq->irq_name), "%s-%s",
			 dev_name(&vdev->dev), info->name);
		err = request_irq(pci_irq_vector(rvp->pdev, vector),
				  revirt_vring_interrupt, 0, pvq->irq_name, vq);
		if (err)
			goto del_vring;
	}
	err = rvp->layout->activate_vq(rvp, pvq);
	if (err)
		goto free_own_irq;
	list_add_tail(&vq->list, &vdev->vqs);
	return 0;

free_own_irq:
	if (own_irq)
		free_irq(pci_irq_vector(rvp->pdev, vector), vq);
del_vring:
	revirt_vring_del(vq);
	pvq->vq = NULL;
	pvq->vector = VIRTIO_MSI_NO_VECTOR;
	return err;
}

static void revirt_pci_free_vqs(struct revirt_pci_device *rvp)
{
	unsigned int i;

	for (i = 0; i < rvp->nvqs; i++) {
		struct revirt_pci_vq *pvq = &rvp->vqs[i];

		if (!pvq->vq)
			continue;
		list_del(&pvq->vq->list);
		rvp->layout->deactivate_vq(rvp, pvq);
		revirt_vring_del(pvq->vq);
	}
}

/**
 * revirt_pci_del_vqs - free every queue and the interrupts
 * @vdev: the device, already reset
 */
void revirt_pci_del_vqs(struct revirt_device *vdev)
{
	struct revirt_pci_device *rvp = to_rvp(vdev);

	/* Free the interrupts first: their handlers look at the queues. */
	revirt_pci_free_irqs(rvp);
	revirt_pci_free_vqs(rvp);
	kfree(rvp->vqs);
	rvp->vqs = NULL;
	rvp->nvqs = 0;
}

static int revirt_pci_try_find_vqs(struct revirt_pci_device *rvp,
				   enum revirt_pci_irq_mode mode,
				   unsigned int nvqs,
				   struct revirt_virtqueue *vqs[],
				   const struct revirt_vq_info info[])
{
	unsigned int i, nvectors = 2, next_vector = 1;
	int err;

	rvp->vqs = kcalloc(nvqs, sizeof(*rvp->vqs), GFP_KERNEL);
	if (!rvp->vqs)
		return -ENOMEM;
	rvp->nvqs = nvqs;

	if (mode == REVIRT_PCI_MSIX_PER_VQ)
		for (i = 0, nvectors = 1; i < nvqs; i++)
			nvectors += !!info[i].callback;
	err = revirt_pci_request_irqs(rvp, mode, nvectors);
	if (err)
		goto free_vqs;

	for (i = 0; i < nvqs; i++) {
		u16 vector = revirt_pci_vq_vector(mode, &info[i],
						  &next_vector);

		err = revirt_pci_setup_vq(rvp, i, &info[i], vector);
		if (err)
			goto del_vqs;
		vqs[i] = rvp->vqs[i].vq;
	}
	return 0;

del_vqs:
	revirt_pci_del_vqs(&rvp->vdev);
	return err;
free_vqs:
	kfree(rvp->vqs);
	rvp->vqs = NULL;
	rvp->nvqs = 0;
	return err;
}

/*
 * A failed attempt released the queues it had made live; a legacy device
 * takes that for a reset of the whole device (QEMU does), and would go on
 * with no features and no status under the next attempt's queues.  Set
 * up again what the core had negotiated: the features, then the status.
 */
static int revirt_pci_restore_status(struct revirt_pci_device *rvp, u8 status)
{
	struct revirt_device *vdev = &rvp->vdev;
	int err;

	if (!status || vdev->config->get_status(vdev))
		return 0;
	dev_warn(&vdev->dev, "device reset when a failed queue setup released its queues; negotiating again (status 0x%02x)\n",
		 status);
	vdev->config->set_status(vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	vdev->config->set_status(vdev, status & ~VIRTIO_CONFIG_S_FEATURES_OK);
	err = vdev->config->finalize_features(vdev);
	if (err)
		return err;
	vdev->config->set_status(vdev, status);
	if (vdev->config->get_status(vdev) != status)
		return -ENODEV;
	return 0;
}

/**
 * revirt_pci_find_vqs - set up queues with the best interrupt mode
 * @vdev: the device
 * @nvqs: number of queues
 * @vqs: filled with the queues
 * @info: name and callback of each queue
 *
 * Return: 0, or the error of the last mode tried.
 */
int revirt_pci_find_vqs(struct revirt_device *vdev, unsigned int nvqs,
			struct revirt_virtqueue *vqs[],
			const struct revirt_vq_info info[])
{
	static const enum revirt_pci_irq_mode modes[] = {
		REVIRT_PCI_MSIX_PER_VQ,
		REVIRT_PCI_MSIX_SHARED,
		REVIRT_PCI_INTX,
	};
	struct revirt_pci_device *rvp = to_rvp(vdev);
	u8 status = vdev->config->get_status(vdev);
	unsigned int i;
	int err = -EINVAL;

	for (i = 0; i < ARRAY_SIZE(modes); i++) {
		if (modes[i] != REVIRT_PCI_INTX && !rvp->pdev->msix_cap)
			continue;
		err = revirt_pci_try_find_vqs(rvp, modes[i], nvqs, vqs, info);
		if (!err || err == -ENOENT)
			break;
		if (revirt_pci_restore_status(rvp, status))
			break;
	}
	if (err)
		dev_err(&vdev->dev, "cannot set up %u queues: %d\n", nvqs, err);
	return err;
}

static void revirt_pci_release(struct device *dev)
{
	kfree(to_rvp(dev_to_revirt(dev)));
}

static bool revirt_pci_id_ok(const struct pci_dev *pdev)
{
	return pdev->device >= REVIRT_PCI_FIRST_DEVICE &&
	       pdev->device <= REVIRT_PCI_LAST_DEVICE;
}

static int revirt_pci_probe(struct pci_dev *pdev,
			    const struct pci_device_id *id)
{
	struct revirt_pci_device *rvp;
	int err;

	if (!revirt_pci_id_ok(pdev))
		return -ENODEV;
	err = pcim_enable_device(pdev);
	if (err)
		return err;

	rvp = kzalloc(sizeof(*rvp), GFP_KERNEL);
	if (!rvp)
		return -ENOMEM;
	rvp->pdev = pdev;
	rvp->vdev.dev.parent = &pdev->dev;
	rvp->vdev.dev.release = revirt_pci_release;

	/* A transitional device is driven through its modern interface. */
	err = revirt_pci_modern_probe(rvp);
	if (err == -ENODEV && pdev->device <= REVIRT_PCI_LAST_TRANSITIONAL)
		err = revirt_pci_legacy_probe(rvp);
	if (err) {
		dev_err(&pdev->dev, "revirt-pci: no usable virtio interface (%d)\n",
			err);
		kfree(rvp);
		return err;
	}
	rvp->vdev.config = rvp->layout->config;
	pci_set_master(pdev);
	/* what the slot reset of an AER recovery puts back */
	pci_save_state(pdev);
	pci_set_drvdata(pdev, rvp);

	err = revirt_register_device(&rvp->vdev);
	if (err) {
		dev_err(&pdev->dev, "revirt-pci: cannot register device (%d)\n",
			err);
		put_device(&rvp->vdev.dev);
		return err;
	}
	dev_info(&rvp->vdev.dev, "%s virtio-pci device %u at %s\n",
		 rvp->layout->name, rvp->vdev.id.device, pci_name(pdev));
	return 0;
}

static void revirt_pci_remove(struct pci_dev *pdev)
{
	struct revirt_pci_device *rvp = pci_get_drvdata(pdev);

	revirt_unregister_device(&rvp->vdev);
}

/* The revirt bus has reset the device already (its children go first). */
static void revirt_pci_shutdown(struct pci_dev *pdev)
{
	pci_clear_master(pdev);
}

/*
 * A function reset (sysfs reset, a VFIO user's FLR) clears every register
 * of the device: the driver stops with the device reset before, and sets
 * it up from scratch after.  The revirt device's lock is held from one to
 * the other (the PCI core calls both from one task, under the function's
 * own lock), so that no unbind, reset or renegotiation comes between.
 */
static void revirt_pci_reset_prepare(struct pci_dev *pdev)
{
	struct revirt_pci_device *rvp = pci_get_drvdata(pdev);

	device_lock(&rvp->vdev.dev);
	revirt_device_freeze(&rvp->vdev);
}

static void revirt_pci_reset_done(struct pci_dev *pdev)
{
	struct revirt_pci_device *rvp = pci_get_drvdata(pdev);

	revirt_device_restore(&rvp->vdev);
	device_unlock(&rvp->vdev.dev);
}

/*
 * AER recovery.  A fatal error resets the link below the port, and with
 * it the function, which loses every request it held; a non-fatal one
 * leaves the device in a state nobody knows.  Both are answered the same
 * way: nothing is asked of the device until the slot reset (with its
 * channel frozen every register reads all-ones), then a virtio reset and
 * the whole set-up, as for a function reset.  The revirt device's lock
 * is taken within the slot reset alone: the PCI core may abandon a
 * recovery between its callbacks, and a lock held across them would
 * then never be dropped.
 */
static pci_ers_result_t revirt_pci_error_detected(struct pci_dev *pdev,
						  pci_channel_state_t state)
{
	struct revirt_pci_device *rvp = pci_get_drvdata(pdev);

	if (state == pci_channel_io_perm_failure) {
		revirt_device_gone(&rvp->vdev, "its PCI channel failed for good");
		return PCI_ERS_RESULT_DISCONNECT;
	}
	dev_warn(&rvp->vdev.dev, "PCI error, channel %s: resetting the device\n",
		 state == pci_channel_io_frozen ? "frozen" : "still working");
	return PCI_ERS_RESULT_NEED_RESET;
}

static pci_ers_result_t revirt_pci_slot_reset(struct pci_dev *pdev)
{
	struct revirt_pci_device *rvp = pci_get_drvdata(pdev);
	int err;

	/* The link reset cleared the BARs, COMMAND and MSI-X: nobody else
	 * puts them back (the PCI core's error reset saves nothing).
	 */
	pci_restore_state(pdev);
	pci_save_state(pdev);
	device_lock(&rvp->vdev.dev);
	err = revirt_device_freeze(&rvp->vdev);
	if (!err)
		err = revirt_device_restore(&rvp->vdev);
	device_unlock(&rvp->vdev.dev);
	if (err) {
		dev_err(&rvp->vdev.dev, "not recovered from the PCI error (%d)\n", err);
		return PCI_ERS_RESULT_DISCONNECT;
	}
	return PCI_ERS_RESULT_RECOVERED;
}

static void revirt_pci_error_resume(struct pci_dev *pdev)
{
	struct revirt_pci_device *rvp = pci_get_drvdata(pdev);

	dev_info(&rvp->vdev.dev, "recovered from the PCI error\n");
}

static const struct pci_error_handlers revirt_pci_err_handler = {
	.error_detected = revirt_pci_error_detected,
	.slot_reset = revirt_pci_slot_reset,
	.resume = revirt_pci_error_resume,
	.reset_prepare = revirt_pci_reset_prepare,
	.reset_done = revirt_pci_reset_done,
};

static const struct pci_device_id revirt_pci_ids[] = {
	{ PCI_DEVICE(REVIRT_PCI_VENDOR, PCI_ANY_ID) },
	{ }
};

static struct pci_driver revirt_pci_driver = {
	.name = "revirt-pci",
	.id_table = revirt_pci_ids,
	.probe = revirt_pci_probe,
	.remove = revirt_pci_remove,
	.shutdown = revirt_pci_shutdown,
	.err_handler = &revirt_pci_err_handler,
};

module_pci_driver(revirt_pci_driver);
MODULE_DESCRIPTION("revirt: virtio PCI transport, legacy and modern");
MODULE_LICENSE("GPL");
