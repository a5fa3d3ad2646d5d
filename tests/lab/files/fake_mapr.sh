#!/bin/sh
# Test double of a Data Fabric (MapR) node's security layout, for the kerberos_mfa tests.
# MapR cannot be installed in the lab: this creates the mapr account and /opt/mapr/conf with
# the files the role manages, every one with the WRONG owner or mode, the stanzas MapR ships
# in mapr.login.conf (jpamLogin on sudo and sshd, a stale Kerberos stanza) and a
# mapr-clusters.conf line. Usage: fake_mapr.sh CLUSTER CLDB_HOST SECURE(true|false)
set -eu
cluster=$1 cldb=$2 secure=$3
getent group mapr >/dev/null || groupadd --system mapr
getent passwd mapr >/dev/null || useradd --system --gid mapr --home-dir /opt/mapr --shell /usr/sbin/nologin mapr
mkdir -p /opt/mapr/conf
echo "7.8.0.0.20240701000000.GA" > /opt/mapr/MapRBuildVersion
printf '%s secure=%s %s:7222\n' "$cluster" "$secure" "$cldb" > /opt/mapr/conf/mapr-clusters.conf
for f in maprserverticket cldb.key dare.master.key; do
    head -c 64 /dev/urandom | base64 > "/opt/mapr/conf/$f"
done
echo "fake keystore" > /opt/mapr/conf/ssl_keystore
echo "fake truststore" > /opt/mapr/conf/ssl_truststore
chown root:root /opt/mapr/conf/maprserverticket /opt/mapr/conf/cldb.key
chmod 0644 /opt/mapr/conf/maprserverticket /opt/mapr/conf/cldb.key /opt/mapr/conf/ssl_keystore
chmod 0666 /opt/mapr/conf/dare.master.key
chmod 0600 /opt/mapr/conf/ssl_truststore
chown mapr:root /opt/mapr/conf/dare.master.key
cat > /opt/mapr/conf/mapr.login.conf <<'CONF'
/**
 * JAAS configuration of a Data Fabric node (test double: the stanzas the product ships).
 */
hadoop_simple {
  org.apache.hadoop.security.login.GenericOSLoginModule required;
  org.apache.hadoop.security.login.HadoopLoginModule required;
};

MAPR_SERVER_KERBEROS {
  com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true
    keyTab="/opt/mapr/conf/mapr.keytab"
    storeKey=true
    doNotPrompt=true
    principal="mapr/my.cluster.com"
    debug=true;
};

// Password logins of the web UI and maprlogin password: PAM services in this order.
jpamLogin {
  net.sf.jpam.jaas.JpamLoginModule Sufficient serviceName="sudo" debug=true;
  net.sf.jpam.jaas.JpamLoginModule Sufficient serviceName="sshd" debug=true;
  net.sf.jpam.jaas.JpamLoginModule Sufficient serviceName="mapr-admin" debug=true;
};
CONF
chown mapr:mapr /opt/mapr/conf/mapr.login.conf
