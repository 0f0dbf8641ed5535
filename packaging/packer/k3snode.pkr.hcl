# A Debian 12 image with K3s and k3snode baked in, ready for the user-data in ../cloud-init/.
#
#   packer build -var k3snode_deb_url=https://…/k3snode_0.1.0_all.deb .
#
# Role-agnostic: both K3s units are installed and none is enabled; the node's user-data writes
# /etc/k3snode/config.toml and enables k3snode plus k3s or k3s-agent (its install lines are
# skipped because the programs are already there). Before capture, `k3snode prepare-image --k3s`
# removes every per-node trace k3snode and K3s left, and the other identities are reset.
# (Packer >= 1.7 with the external qemu plugin also wants:
#    packer { required_plugins { qemu = { source = "github.com/hashicorp/qemu", version = ">= 1.0.0" } } })

variable "k3snode_deb_url" {
  type        = string
  description = "URL of the k3snode .deb (packaging/build-deb.sh builds it)"
}

variable "iso_checksum" {
  type    = string
  default = "file:https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS"
}

variable "k3s_version" {
  type    = string
  default = ""
}

source "qemu" "debian12" {
  iso_url          = "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
  iso_checksum     = var.iso_checksum
  disk_image       = true
  disk_size        = "8G"
  format           = "qcow2"
  headless         = true
  output_directory = "output-k3snode"
  vm_name          = "k3snode-debian12.qcow2"
  cd_label         = "cidata"
  cd_files         = ["./seed/user-data", "./seed/meta-data"]
  ssh_username     = "packer"
  ssh_password     = "packer"
  ssh_timeout      = "10m"
  # The build user goes with the shutdown (it is logged in until then).
  shutdown_command = "sudo sh -c 'userdel -f -r packer; rm -f /etc/sudoers.d/90-cloud-init-users; systemctl poweroff'"
}

build {
  sources = ["source.qemu.debian12"]

  provisioner "shell" {
    execute_command = "sudo sh -eux '{{ .Path }}'"
    environment_vars = [
      "K3SNODE_DEB_URL=${var.k3snode_deb_url}",
      "INSTALL_K3S_VERSION=${var.k3s_version}",
    ]
    inline = [
      "cloud-init status --wait || true",
      # K3s: the binary and both units, neither enabled nor started.
      "curl -sfL https://get.k3s.io | INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_SKIP_START=true INSTALL_K3S_EXEC=server sh -",
      "curl -sfL https://get.k3s.io | INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_SKIP_START=true INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC=agent sh -",
      # k3snode: enabled by the package, started at the clone's first boot after its settings.
      "curl -fsSLo /run/k3snode.deb \"$K3SNODE_DEB_URL\"",
      "apt-get install -y -o Dpkg::Options::=--force-confold /run/k3snode.deb",
      "k3snode check || true",
    ]
  }

  provisioner "shell" {
    execute_command = "sudo sh -eux '{{ .Path }}'"
    inline = [
      # Per-node state: k3snode's own and K3s's (airgap images under agent/images stay).
      "systemctl stop k3snode k3s k3s-agent 2>/dev/null || true",
      "k3snode prepare-image --k3s",
      # What prepare-image lists but leaves to the image builder.
      "rm -f /var/lib/tailscale/tailscaled.state /etc/ssh/ssh_host_*",
      "cloud-init clean --logs",
      "truncate -s 0 /etc/machine-id && rm -f /var/lib/dbus/machine-id",
    ]
  }
}
