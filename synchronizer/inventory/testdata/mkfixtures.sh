#!/bin/bash
# Writes the two hand-made nodes under testdata/nodes: p, a typical server
# (Intel I350 NIC on igb, MegaRAID SAS 3108 on megaraid_sas, C620 AHCI,
# PCIe root port), booting Debian's 6.1.0-18-amd64; and s, a spare
# (Realtek RTL8126 NIC, Samsung NVMe, AHCI) booting 6.12.9-amd64 with
# 6.1.0-18-amd64 still installed. The module index lines are real lines of
# Debian kernels, cut down to these drivers; the module files are small
# ELF objects built with gcc whose .modinfo holds the module's real
# firmware= entries, compressed as Debian does (.ko.xz), and a .ko, .ko.zst
# and .ko.gz copy of r8169 under modinfo/ for the decompressors.
#   bash mkfixtures.sh        (from testdata/; needs gcc, xz, zstd, gzip)
set -euo pipefail
cd "$(dirname "$0")"
rm -rf nodes modinfo
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# module NAME FIRMWARE... -> prints the path of a plain .ko
module() {
	local name=$1; shift
	{
		echo "__attribute__((section(\".modinfo\"), used, aligned(1))) static const char m0[] = \"license=GPL\";"
		echo "__attribute__((section(\".modinfo\"), used, aligned(1))) static const char m1[] = \"name=$name\";"
		local i=2
		for fw in "$@"; do
			echo "__attribute__((section(\".modinfo\"), used, aligned(1))) static const char m$i[] = \"firmware=$fw\";"
			i=$((i + 1))
		done
		echo "int init_module(void) { return 0; }"
	} > "$work/$name.c"
	gcc -c -Os -o "$work/$name.ko" "$work/$name.c"
	echo "$work/$name.ko"
}

r8169_61=(rtl_nic/rtl8168d-1.fw rtl_nic/rtl8168e-3.fw rtl_nic/rtl8168h-2.fw rtl_nic/rtl8125a-3.fw)
r8169_612=("${r8169_61[@]}" rtl_nic/rtl8126a-2.fw)

# kernel ROOT RELEASE: modules.alias, modules.dep, modules.builtin(.modinfo)
# and the module files.
kernel() {
	local root=$1 rel=$2 dir=$1/lib/modules/$2
	mkdir -p "$dir"
	cat > "$dir/modules.alias" <<'EOF'
# Aliases extracted from modules themselves.
alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e
alias pci:v00008086d0000153Asv*sd*bc*sc*i* e1000e
alias pci:v00008086d000015B8sv*sd*bc*sc*i* e1000e
alias pci:v00008086d000010C9sv*sd*bc*sc*i* igb
alias pci:v00008086d00001521sv*sd*bc*sc*i* igb
alias pci:v00008086d00001522sv*sd*bc*sc*i* igb
alias pci:v00008086d00001523sv*sd*bc*sc*i* igb
alias pci:v00008086d00001533sv*sd*bc*sc*i* igb
alias pci:v00008086d000015F3sv*sd*bc*sc*i* igc
alias pci:v00008086d0000125Csv*sd*bc*sc*i* igc
alias pci:v00008086d00001572sv*sd*bc*sc*i* i40e
alias pci:v000014E4d0000164Asv0000103Csd00003101bc*sc*i* bnx2
alias pci:v000014E4d0000164Asv*sd*bc*sc*i* bnx2
alias pci:v00001186d00004300sv00001186sd00004B10bc*sc*i* r8169
alias pci:v000010ECd00008136sv*sd*bc*sc*i* r8169
alias pci:v000010ECd00008161sv*sd*bc*sc*i* r8169
alias pci:v000010ECd00008168sv*sd*bc*sc*i* r8169
alias pci:v000010ECd00008169sv*sd*bc*sc*i* r8169
alias pci:v000010ECd00008125sv*sd*bc*sc*i* r8169
EOF
	if [ "$rel" = 6.12.9-amd64 ]; then
		echo 'alias pci:v000010ECd00008126sv*sd*bc*sc*i* r8169' >> "$dir/modules.alias"
	fi
	cat >> "$dir/modules.alias" <<'EOF'
alias pci:v00001000d0000005Bsv*sd*bc*sc*i* megaraid_sas
alias pci:v00001000d0000005Dsv*sd*bc*sc*i* megaraid_sas
alias pci:v00001000d0000005Fsv*sd*bc*sc*i* megaraid_sas
alias pci:v00001000d00000097sv*sd*bc*sc*i* mpt3sas
alias pci:v00008086d00002922sv*sd*bc*sc*i* ahci
alias pci:v00008086d0000A182sv*sd*bc*sc*i* ahci
alias pci:v*d*sv*sd*bc01sc06i01* ahci
alias pci:v0000144Dd0000A808sv*sd*bc*sc*i* nvme
alias pci:v*d*sv*sd*bc01sc08i02* nvme
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias virtio:d00000002v* virtio_blk
alias usb:v*p*d*dc*dsc*dp*ic03isc*ip*in* usbhid
alias acpi*:PNP0C14:* wmi
EOF
	cat > "$dir/modules.dep" <<'EOF'
kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko.xz: kernel/drivers/ptp/ptp.ko.xz kernel/drivers/pps/pps_core.ko.xz
kernel/drivers/net/ethernet/intel/igb/igb.ko.xz: kernel/drivers/dca/dca.ko.xz kernel/drivers/ptp/ptp.ko.xz kernel/drivers/pps/pps_core.ko.xz kernel/drivers/i2c/algos/i2c-algo-bit.ko.xz
kernel/drivers/net/ethernet/intel/igc/igc.ko.xz: kernel/drivers/ptp/ptp.ko.xz kernel/drivers/pps/pps_core.ko.xz
kernel/drivers/net/ethernet/intel/i40e/i40e.ko.xz: kernel/drivers/ptp/ptp.ko.xz kernel/drivers/pps/pps_core.ko.xz
kernel/drivers/net/ethernet/broadcom/bnx2.ko.xz:
kernel/drivers/net/ethernet/realtek/r8169.ko.xz: kernel/drivers/net/phy/realtek.ko.xz kernel/drivers/net/mdio/mdio-devres.ko.xz kernel/drivers/net/phy/libphy.ko.xz
kernel/drivers/net/phy/realtek.ko.xz: kernel/drivers/net/phy/libphy.ko.xz
kernel/drivers/net/mdio/mdio-devres.ko.xz: kernel/drivers/net/phy/libphy.ko.xz
kernel/drivers/net/phy/libphy.ko.xz:
kernel/drivers/dca/dca.ko.xz:
kernel/drivers/ptp/ptp.ko.xz: kernel/drivers/pps/pps_core.ko.xz
kernel/drivers/pps/pps_core.ko.xz:
kernel/drivers/i2c/algos/i2c-algo-bit.ko.xz:
kernel/drivers/scsi/megaraid/megaraid_sas.ko.xz: kernel/drivers/scsi/scsi_mod.ko.xz kernel/drivers/scsi/scsi_common.ko.xz
kernel/drivers/scsi/mpt3sas/mpt3sas.ko.xz: kernel/drivers/scsi/scsi_transport_sas.ko.xz kernel/drivers/scsi/raid_class.ko.xz kernel/drivers/scsi/scsi_mod.ko.xz kernel/drivers/scsi/scsi_common.ko.xz
kernel/drivers/scsi/scsi_transport_sas.ko.xz: kernel/drivers/scsi/scsi_mod.ko.xz kernel/drivers/scsi/scsi_common.ko.xz
kernel/drivers/scsi/raid_class.ko.xz:
kernel/drivers/scsi/scsi_mod.ko.xz: kernel/drivers/scsi/scsi_common.ko.xz
kernel/drivers/scsi/scsi_common.ko.xz:
kernel/drivers/ata/ahci.ko.xz: kernel/drivers/ata/libahci.ko.xz kernel/drivers/ata/libata.ko.xz kernel/drivers/scsi/scsi_mod.ko.xz kernel/drivers/scsi/scsi_common.ko.xz
kernel/drivers/ata/libahci.ko.xz: kernel/drivers/ata/libata.ko.xz kernel/drivers/scsi/scsi_mod.ko.xz kernel/drivers/scsi/scsi_common.ko.xz
kernel/drivers/ata/libata.ko.xz: kernel/drivers/scsi/scsi_mod.ko.xz kernel/drivers/scsi/scsi_common.ko.xz
kernel/drivers/nvme/host/nvme.ko.xz: kernel/drivers/nvme/host/nvme-core.ko.xz
kernel/drivers/nvme/host/nvme-core.ko.xz:
kernel/drivers/virtio/virtio_pci.ko.xz: kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz kernel/drivers/virtio/virtio_pci_legacy_dev.ko.xz
kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko.xz:
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/drivers/net/failover.ko.xz
kernel/drivers/net/net_failover.ko.xz: kernel/drivers/net/failover.ko.xz
kernel/drivers/net/failover.ko.xz:
kernel/drivers/block/virtio_blk.ko.xz:
kernel/drivers/hid/usbhid/usbhid.ko.xz:
kernel/drivers/platform/x86/wmi.ko.xz:
EOF
	printf 'kernel/drivers/usb/host/xhci-hcd.ko\nkernel/drivers/usb/host/xhci-pci.ko\n' > "$dir/modules.builtin"
	printf 'xhci_hcd.license=GPL\0xhci_pci.license=GPL\0xhci_pci.alias=pci:v*d*sv*sd*bc0Csc03i30*\0xhci_pci.firmware=renesas_usb_fw.mem\0' > "$dir/modules.builtin.modinfo"
	local fw
	while IFS=: read -r path _; do
		local name; name=$(basename "$path" .ko.xz)
		case "$name" in
		r8169) if [ "$rel" = 6.12.9-amd64 ]; then fw=("${r8169_612[@]}"); else fw=("${r8169_61[@]}"); fi ;;
		bnx2) fw=(bnx2/bnx2-mips-09-6.2.1b.fw bnx2/bnx2-rv2p-09-6.0.17.fw) ;;
		*) fw=() ;;
		esac
		mkdir -p "$dir/$(dirname "$path")"
		xz -c --check=crc32 "$(module "$name" "${fw[@]}")" > "$dir/$path"
		echo "/lib/modules/$rel/$path" >> "$work/$(basename "$root")-linux-image-$rel.list"
	done < "$dir/modules.dep"
	mkdir -p "$root/var/lib/dpkg/info"
	{ echo /.; echo /lib; echo "/lib/modules/$rel"; cat "$work/$(basename "$root")-linux-image-$rel.list"; } > "$root/var/lib/dpkg/info/linux-image-$rel.list"
}

# pci ROOT SLOT CLASS VENDOR DEVICE SUBVENDOR SUBDEVICE DRIVER
pci() {
	local root=$1 slot=$2 class=$3 v=$4 d=$5 sv=$6 sd=$7 drv=$8
	local dir=$root/sys/devices/pci0000:00/$slot
	mkdir -p "$dir" "$root/sys/bus/pci/devices"
	echo "0x$class" > "$dir/class"
	echo "0x$v" > "$dir/vendor"; echo "0x$d" > "$dir/device"
	echo "0x$sv" > "$dir/subsystem_vendor"; echo "0x$sd" > "$dir/subsystem_device"
	local up=${v^^} dp=${d^^} svp=${sv^^} sdp=${sd^^} c=${class^^}
	printf 'pci:v0000%sd0000%ssv0000%ssd0000%sbc%ssc%si%s\n' "$up" "$dp" "$svp" "$sdp" "${c:0:2}" "${c:2:2}" "${c:4:2}" > "$dir/modalias"
	[ -n "$drv" ] && ln -s "../../../bus/pci/drivers/$drv" "$dir/driver"
	ln -s "../../../devices/pci0000:00/$slot" "$root/sys/bus/pci/devices/$slot"
}

# nic ROOT NAME MAC SLOT DRIVER (SLOT "" for a virtual interface)
nic() {
	local root=$1 name=$2 mac=$3 slot=$4 drv=$5
	mkdir -p "$root/sys/class/net"
	if [ -z "$slot" ]; then
		mkdir -p "$root/sys/devices/virtual/net/$name"
		echo "$mac" > "$root/sys/devices/virtual/net/$name/address"
		ln -s "../../devices/virtual/net/$name" "$root/sys/class/net/$name"
		return
	fi
	local dir=$root/sys/devices/pci0000:00/$slot/net/$name
	mkdir -p "$dir"
	echo "$mac" > "$dir/address"
	ln -s ../.. "$dir/device"
	ln -s "../../devices/pci0000:00/$slot/net/$name" "$root/sys/class/net/$name"
}

# --- P: the primary, a typical server -------------------------------------
p=nodes/p
mkdir -p $p/proc/sys/kernel $p/etc/apt/sources.list.d $p/boot $p/lib/firmware/rtl_nic $p/lib/firmware/bnx2
echo 6.1.0-18-amd64 > $p/proc/sys/kernel/osrelease
ln -s boot/vmlinuz-6.1.0-18-amd64 $p/vmlinuz
pci $p 0000:00:00.0 060000 8086 2020 8086 0000 ""
pci $p 0000:00:1c.0 060400 8086 a190 8086 7270 pcieport
pci $p 0000:00:14.0 0c0330 8086 a1af 8086 7270 xhci_hcd
pci $p 0000:00:17.0 010601 8086 a182 1028 0716 ahci
pci $p 0000:18:00.0 010400 1000 005d 1028 1f49 megaraid_sas
pci $p 0000:19:00.0 020000 8086 1521 8086 0001 igb
pci $p 0000:19:00.1 020000 8086 1521 8086 0001 igb
nic $p eno1 b4:96:91:00:00:01 0000:19:00.0 igb
nic $p eno2 b4:96:91:00:00:02 0000:19:00.1 igb
nic $p lo 00:00:00:00:00:00 "" ""
nic $p br0 b4:96:91:00:00:01 "" ""
cat > $p/proc/modules <<'EOF'
megaraid_sas 188416 4 - Live 0x0000000000000000
igb 282624 0 - Live 0x0000000000000000
dca 16384 1 igb, Live 0x0000000000000000
ahci 49152 0 - Live 0x0000000000000000
libahci 53248 1 ahci, Live 0x0000000000000000
libata 401408 2 ahci,libahci, Live 0x0000000000000000
scsi_mod 270336 3 megaraid_sas,libata,sd_mod, Live 0x0000000000000000
EOF
cat > $p/etc/apt/sources.list <<'EOF'
# deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 NETINST]/ bookworm main
deb http://deb.debian.org/debian bookworm main non-free-firmware
deb-src http://deb.debian.org/debian bookworm main non-free-firmware

deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://security.debian.org/debian-security bookworm-security main non-free-firmware
EOF
cat > $p/etc/apt/sources.list.d/pgdg.sources <<'EOF'
Types: deb
URIs: http://apt.postgresql.org/pub/repos/apt
Suites: bookworm-pgdg
Components: main
Signed-By: /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc

# an old mirror, kept for reference
Enabled: no
Types: deb
URIs: http://ftp.example.org/debian
Suites: bookworm
Components: main
EOF
printf 'deb http://example.org/disabled ./\n' > $p/etc/apt/sources.list.d/old.list.disabled
for f in rtl_nic/rtl8168d-1.fw rtl_nic/rtl8168h-2.fw rtl_nic/rtl8125a-3.fw rtl_nic/rtl8126a-2.fw bnx2/bnx2-mips-09-6.2.1b.fw; do
	echo "firmware $f" > $p/lib/firmware/$f
	echo "/lib/firmware/$f" >> $work/p-fw.list
done
{ echo /.; echo /lib; echo /lib/firmware; cat $work/p-fw.list; } > $work/p-fw-all.list
kernel $p 6.1.0-18-amd64
grep -v bnx2 $work/p-fw-all.list > $p/var/lib/dpkg/info/firmware-realtek.list
{ echo /.; grep bnx2 $work/p-fw-all.list; } > $p/var/lib/dpkg/info/firmware-bnx2.list
# P's initramfs was made with MODULES=dep: only the drivers of P's disks.
cat > $p/boot/initrd.img-6.1.0-18-amd64.lsinitramfs <<'EOF'
.
usr/lib/modules/6.1.0-18-amd64
usr/lib/modules/6.1.0-18-amd64/kernel/drivers/scsi/scsi_common.ko
usr/lib/modules/6.1.0-18-amd64/kernel/drivers/scsi/scsi_mod.ko
usr/lib/modules/6.1.0-18-amd64/kernel/drivers/scsi/megaraid/megaraid_sas.ko
usr/lib/modules/6.1.0-18-amd64/kernel/drivers/ata/libata.ko
usr/lib/modules/6.1.0-18-amd64/kernel/drivers/ata/libahci.ko
usr/lib/modules/6.1.0-18-amd64/kernel/drivers/ata/ahci.ko
usr/lib/modules/6.1.0-18-amd64/kernel/drivers/net/ethernet/intel/igb/igb.ko
usr/lib/modules/6.1.0-18-amd64/kernel/drivers/dca/dca.ko
usr/lib/modules/6.1.0-18-amd64/modules.dep
usr/lib/modules/6.1.0-18-amd64/modules.alias
EOF
cat > $p/var/lib/dpkg/status <<'EOF'
Package: base-files
Status: install ok installed
Priority: required
Essential: yes
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: bash
Status: install ok installed
Essential: yes
Architecture: amd64
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

Package: libc6
Status: install ok installed
Architecture: i386
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

Package: openssh-server
Status: install ok installed
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u2
Conffiles:
 /etc/ssh/moduli 3b8a4e3a6e0ab0e9e5b4ee4e7aef5e5a
Description: secure shell (SSH) server, for secure access from remote machines

Package: postgresql-15
Status: hold ok installed
Architecture: amd64
Source: postgresql-15
Version: 15.6-0+deb12u1
Description: The World's Most Advanced Open Source Relational Database

Package: mawk
Status: install ok installed
Architecture: amd64
Version: 1.3.4.20200120-3.1
Description: Pattern scanning and text processing language

Package: firmware-realtek
Status: install ok installed
Architecture: all
Source: firmware-nonfree
Version: 20230210-5
Description: Binary firmware for Realtek wired/wifi/BT adapters

Package: firmware-bnx2
Status: install ok installed
Architecture: all
Source: firmware-nonfree
Version: 20230210-5
Description: Binary firmware for Broadcom/QLogic NetXtremeII

Package: linux-image-6.1.0-18-amd64
Status: install ok installed
Architecture: amd64
Source: linux-signed-amd64 (6.1.76+1)
Version: 6.1.76-1
Description: Linux 6.1 for 64-bit PCs (signed)

Package: haproxy
Status: install ok installed
Architecture: amd64
Version: 2.6.12-1+deb12u1
Description: fast and reliable load balancing reverse proxy

EOF

# --- S: the secondary, a spare of other make -------------------------------
s=nodes/s
mkdir -p $s/proc/sys/kernel $s/etc/apt/sources.list.d $s/boot $s/lib/firmware/rtl_nic
echo 6.12.9-amd64 > $s/proc/sys/kernel/osrelease
ln -s boot/vmlinuz-6.12.9-amd64 $s/vmlinuz
pci $s 0000:00:00.0 060000 8086 4660 8086 7d25 ""
pci $s 0000:00:01.0 060400 8086 460d 8086 7d25 pcieport
pci $s 0000:00:14.0 0c0330 8086 7ae0 8086 7d25 xhci_hcd
pci $s 0000:00:17.0 010601 8086 7ae2 1462 7d25 ahci
pci $s 0000:01:00.0 010802 144d a808 144d a801 nvme
pci $s 0000:03:00.0 020000 10ec 8126 1462 7d25 r8169
pci $s 0000:00:1f.4 0c0500 8086 7aa3 1462 7d25 ""
nic $s enp3s0 d8:bb:c1:00:00:01 0000:03:00.0 r8169
nic $s lo 00:00:00:00:00:00 "" ""
cat > $s/proc/modules <<'EOF'
r8169 118784 0 - Live 0x0000000000000000
realtek 36864 1 - Live 0x0000000000000000
libphy 184320 2 r8169,realtek, Live 0x0000000000000000
nvme 57344 3 - Live 0x0000000000000000
nvme_core 200704 4 nvme, Live 0x0000000000000000
EOF
cat > $s/etc/apt/sources.list.d/debian.sources <<'EOF'
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-backports
Components: main
 non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.debian.org/debian-security
Suites: bookworm-security
Components: main non-free-firmware
EOF
for f in rtl_nic/rtl8168h-2.fw rtl_nic/rtl8125a-3.fw rtl_nic/rtl8126a-2.fw; do
	echo "firmware $f" > $s/lib/firmware/$f
	echo "/usr/lib/firmware/$f" >> $work/s-fw.list
done
kernel $s 6.1.0-18-amd64
kernel $s 6.12.9-amd64
# Merged /usr: trixie-era packages list /usr/lib paths.
sed -i 's#^/lib/modules#/usr/lib/modules#' $s/var/lib/dpkg/info/linux-image-6.12.9-amd64.list
{ echo /.; echo /usr/lib/firmware; cat $work/s-fw.list; } > $s/var/lib/dpkg/info/firmware-realtek.list
# S's initramfs were made with MODULES=dep too: its NVMe and NIC, no RAID.
for rel in 6.1.0-18-amd64 6.12.9-amd64; do
	cat > $s/boot/initrd.img-$rel.lsinitramfs <<EOF
.
usr/lib/modules/$rel
usr/lib/modules/$rel/kernel/drivers/nvme/host/nvme-core.ko.xz
usr/lib/modules/$rel/kernel/drivers/nvme/host/nvme.ko.xz
usr/lib/modules/$rel/kernel/drivers/ata/libata.ko.xz
usr/lib/modules/$rel/kernel/drivers/ata/libahci.ko.xz
usr/lib/modules/$rel/kernel/drivers/ata/ahci.ko.xz
usr/lib/modules/$rel/kernel/drivers/scsi/scsi_common.ko.xz
usr/lib/modules/$rel/kernel/drivers/scsi/scsi_mod.ko.xz
usr/lib/modules/$rel/kernel/drivers/net/ethernet/realtek/r8169.ko.xz
usr/lib/modules/$rel/kernel/drivers/net/phy/realtek.ko.xz
usr/lib/modules/$rel/kernel/drivers/net/phy/libphy.ko.xz
usr/lib/modules/$rel/kernel/drivers/net/mdio/mdio-devres.ko.xz
EOF
done
cat > $s/var/lib/dpkg/status <<'EOF'
Package: base-files
Status: install ok installed
Priority: required
Essential: yes
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: bash
Status: install ok installed
Essential: yes
Architecture: amd64
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

Package: openssh-server
Status: install ok installed
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u3
Description: secure shell (SSH) server, for secure access from remote machines

Package: postgresql-15
Status: install ok installed
Architecture: amd64
Version: 15.6-0+deb12u1
Description: The World's Most Advanced Open Source Relational Database

Package: mawk
Status: install ok installed
Architecture: i386
Version: 1.3.4.20200120-3.1
Description: Pattern scanning and text processing language

Package: firmware-realtek
Status: install ok installed
Architecture: all
Source: firmware-nonfree
Version: 20230210-5
Description: Binary firmware for Realtek wired/wifi/BT adapters

Package: linux-image-6.1.0-18-amd64
Status: install ok installed
Architecture: amd64
Source: linux-signed-amd64 (6.1.76+1)
Version: 6.1.76-1
Description: Linux 6.1 for 64-bit PCs (signed)

Package: linux-image-6.12.9-amd64
Status: install ok installed
Architecture: amd64
Source: linux-signed-amd64 (6.12.9+1~bpo12+1)
Version: 6.12.9-1~bpo12+1
Description: Linux 6.12 for 64-bit PCs (signed)

Package: nginx
Status: deinstall ok config-files
Architecture: amd64
Version: 1.22.1-9
Description: small, powerful, scalable web/proxy server

Package: htop
Status: install ok installed
Architecture: amd64
Version: 3.2.2-2
Description: interactive processes viewer

EOF

# --- modinfo/: one module in every compression the kernel loads ----------
mkdir -p modinfo
ko=$(module r8169 "${r8169_61[@]}")
cp "$ko" modinfo/r8169.ko
xz -c --check=crc32 "$ko" > modinfo/r8169.ko.xz
zstd -q -c "$ko" > modinfo/r8169.ko.zst
gzip -n -c "$ko" > modinfo/r8169.ko.gz
