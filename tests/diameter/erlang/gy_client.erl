%% A PGW's Gy client on Erlang/OTP's diameter application (strict: it checks every answer
%% against the dictionary gy3gpp.dia and reports what it finds wrong in `errors`).
%% Run: erl -noshell -pa <build> -eval 'gy_client:main(["Port", "Imsi", "Realm", "Host"])'
%% Prints one line per answer: "<step> rc=<Result-Code> errors=<errors> mscc=<...>".
-module(gy_client).

-export([main/1]).
-export([peer_up/3, peer_down/3, pick_peer/4, prepare_request/3, prepare_retransmit/3,
         handle_answer/4, handle_error/4, handle_request/3]).

-include_lib("diameter/include/diameter.hrl").

main([PortS, Imsi, Realm, Host]) ->
    Port = list_to_integer(PortS),
    ok = diameter:start(),
    Svc = gy,
    ok = diameter:start_service(Svc, [
        {'Origin-Host', Host}, {'Origin-Realm', Realm}, {'Vendor-Id', 0},
        {'Product-Name', "otp-gy-client"}, {'Auth-Application-Id', [4]},
        {decode_format, map}, {string_decode, false},
        {application, [{alias, common}, {dictionary, diameter_gen_base_rfc6733},
                       {module, ?MODULE}]},
        {application, [{alias, gy}, {dictionary, gy3gpp}, {module, ?MODULE}]}]),
    true = diameter:subscribe(Svc),
    {ok, _} = diameter:add_transport(Svc, {connect, [
        {transport_module, diameter_tcp},
        {transport_config, [{raddr, {127, 0, 0, 1}}, {rport, Port}]},
        {reconnect_timer, 60000}]}),
    receive
        #diameter_event{info = {up, _}} -> ok;
        #diameter_event{info = {up, _, _, _, _}} -> ok;
        #diameter_event{info = Other} -> io:format("event ~p~n", [Other]), halt(2)
    after 10000 -> io:format("no connection~n"), halt(2)
    end,
    Sid = diameter:session_id(Host),
    Base = [{'Session-Id', Sid}, {'Origin-Host', Host}, {'Origin-Realm', Realm},
            {'Destination-Realm', "mvno.test"}, {'Auth-Application-Id', 4},
            {'Service-Context-Id', "32251@3gpp.org"},
            {'Subscription-Id', [[{'Subscription-Id-Type', 1},
                                  {'Subscription-Id-Data', Imsi}]]},
            {'Multiple-Services-Indicator', [1]}],
    Mscc = fun(Rsu, Used) ->
               [[{'Rating-Group', [10]}]
                ++ [{'Requested-Service-Unit', [[{'CC-Total-Octets', [Rsu]}]]} || Rsu > 0]
                ++ [{'Used-Service-Unit', [[{'CC-Total-Octets', [Used]}]]} || Used >= 0]]
           end,
    ask(Svc, "initial", [{'CC-Request-Type', 1}, {'CC-Request-Number', 0},
                         {'Multiple-Services-Credit-Control', Mscc(1048576, -1)} | Base]),
    ask(Svc, "update", [{'CC-Request-Type', 2}, {'CC-Request-Number', 1},
                        {'Multiple-Services-Credit-Control', Mscc(1048576, 1048576)} | Base]),
    ask(Svc, "update", [{'CC-Request-Type', 2}, {'CC-Request-Number', 2},
                        {'Multiple-Services-Credit-Control', Mscc(1048576, 1048576)} | Base]),
    ask(Svc, "update", [{'CC-Request-Type', 2}, {'CC-Request-Number', 3},
                        {'Multiple-Services-Credit-Control', Mscc(1048576, 1048576)} | Base]),
    ask(Svc, "terminate", [{'CC-Request-Type', 3}, {'CC-Request-Number', 4},
                           {'Multiple-Services-Credit-Control', Mscc(0, 0)} | Base]),
    Unknown = [{'Session-Id', diameter:session_id(Host)} | tl(Base)],
    ask(Svc, "unknown", [{'CC-Request-Type', 1}, {'CC-Request-Number', 0},
                         {'Subscription-Id', [[{'Subscription-Id-Type', 1},
                                               {'Subscription-Id-Data', "001019999999999"}]]},
                         {'Multiple-Services-Credit-Control', Mscc(1048576, -1)}
                         | lists:keydelete('Subscription-Id', 1, Unknown)]),
    diameter:stop_service(Svc),
    halt(0).

ask(Svc, Step, Avps) ->
    case diameter:call(Svc, gy, ['CCR' | Avps], [{timeout, 5000}]) of
        {ok, ['CCA' | Map], Errors} ->
            io:format("~s rc=~0p errors=~0p mscc=~0p~n",
                      [Step, maps:get('Result-Code', Map), Errors,
                       maps:get('Multiple-Services-Credit-Control', Map, [])]);
        Other ->
            io:format("~s failed=~0p~n", [Step, Other])
    end.

peer_up(_Svc, _Peer, State) -> State.
peer_down(_Svc, _Peer, State) -> State.
pick_peer([Peer | _], _, _Svc, _State) -> {ok, Peer};
pick_peer([], _, _Svc, _State) -> false.
prepare_request(Pkt, _Svc, _Peer) -> {send, Pkt}.
prepare_retransmit(Pkt, _Svc, _Peer) -> {send, Pkt}.
handle_answer(#diameter_packet{msg = Msg, errors = Errors}, _Req, _Svc, _Peer) ->
    {ok, Msg, Errors}.
handle_error(Reason, _Req, _Svc, _Peer) -> {error, Reason}.
handle_request(_Pkt, _Svc, _Peer) -> discard.
