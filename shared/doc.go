// Package shared is the root of the code every yzpay service links: the Youzan
// client and sandbox, push verification, merchant signing, the order store and
// the JetStream plumbing. It holds no code itself; see its subpackages.
package shared
