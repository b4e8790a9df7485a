package kurrentdbtest

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
)

// featuresService reports the node's version and methods. It lists no
// BatchAppend and no persistent subscriptions, so the v4 client uses the
// legacy Append and enables no persistent-subscription features.
type featuresService struct {
	serverfeatures.UnimplementedServerFeaturesServer
	version string // numeric major.minor.patch (notes §2)
}

// GetSupportedMethods returns the version and the Streams, Gossip and
// ServerFeatures methods the double serves.
func (f *featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	method := func(service, name string) *serverfeatures.SupportedMethod {
		return &serverfeatures.SupportedMethod{ServiceName: service, MethodName: name}
	}
	const streams = "event_store.client.streams.streams"
	return &serverfeatures.SupportedMethods{
		EventStoreServerVersion: f.version,
		Methods: []*serverfeatures.SupportedMethod{
			method(streams, "read"),
			method(streams, "append"),
			method(streams, "tombstone"),
			method("event_store.client.gossip.gossip", "read"),
			method("event_store.client.server_features.serverfeatures", "getsupportedmethods"),
		},
	}, nil
}

// gossipService describes the cluster for esdb+discover:// connections
// (notes §2): the double alone, alive and leader; or, while it redirects,
// the double as a follower and the leader it redirects to.
type gossipService struct {
	gossip.UnimplementedGossipServer
	self     string // host:port
	instance uuid.UUID
	faults   *faults
}

func newGossipService(self string, f *faults) *gossipService {
	return &gossipService{self: self, instance: uuid.New(), faults: f}
}

// Read returns the cluster's members.
func (g *gossipService) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	leader := g.faults.leaderAddr()
	if leader == "" {
		return &gossip.ClusterInfo{Members: []*gossip.MemberInfo{member(g.instance, g.self, gossip.MemberInfo_Leader)}}, nil
	}
	return &gossip.ClusterInfo{Members: []*gossip.MemberInfo{
		member(g.instance, g.self, gossip.MemberInfo_Follower),
		member(uuid.NewSHA1(g.instance, []byte(leader)), leader, gossip.MemberInfo_Leader),
	}}, nil
}

// member describes one alive node at addr ("host:port").
func member(id uuid.UUID, addr string, state gossip.MemberInfo_VNodeState) *gossip.MemberInfo {
	host, portText, _ := net.SplitHostPort(addr) // addr comes from a listener or RedirectToLeader
	port, _ := strconv.ParseUint(portText, 10, 16)
	return &gossip.MemberInfo{
		InstanceId:   wireUUID(id, false),
		TimeStamp:    time.Now().UnixNano() / 100,
		State:        state,
		IsAlive:      true,
		HttpEndPoint: &gossip.EndPoint{Address: host, Port: uint32(port)},
	}
}
