-- wrk script for bench/cluster.py: like pixels.lua (a random line of REQUESTS_FILE each time:
-- a pixel or a click path, and a mail client's user agent), but every request's user agent
-- ends with its own tag, " or/<TAG>/<thread>/<n>", so that each answer the balancer logged can
-- be matched with the event stored for it (or its absence, or its double).
-- Usage: wrk ... -s bench/cluster.lua URL -- REQUESTS_FILE TAG

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   lines = {}
   for line in io.lines(args[1]) do
      local path, agent = line:match("^([^\t]+)\t(.*)$")
      lines[#lines + 1] = { path, agent }
   end
   prefix = " or/" .. args[2] .. "/" .. id .. "/"
   sent = 0
   math.randomseed(id * 7919 + os.time())
end

function request()
   sent = sent + 1
   local line = lines[math.random(#lines)]
   return wrk.format("GET", line[1], { ["User-Agent"] = line[2] .. prefix .. sent })
end

function done(summary, latency, responses)
   local total = 0
   for _, thread in ipairs(threads) do
      total = total + thread:get("sent")
   end
   -- wrk calls request() once on the first thread before the run to check it; never sent.
   io.write(string.format("bench: requests sent %d\n", total - 1))
end
